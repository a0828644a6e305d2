#!/usr/bin/perl
# AnyEvent::RabbitMQ (Debian's libanyevent-rabbitmq-perl) against a broker:
#   perl anyevent_rabbitmq.pl HOST PORT TAG
# Prints one line per check; the test compares them with what RabbitMQ 3.10 answers.
use strict;
use warnings;
use AnyEvent;
use AnyEvent::RabbitMQ;

my ($host, $port, $tag) = @ARGV;
$| = 1;

# Runs one asynchronous call and waits for its answer (5 s at most).
sub call {
    my ($obj, $method, %args) = @_;
    my $cv = AnyEvent->condvar;
    my $timer = AnyEvent->timer(after => 5, cb => sub { $cv->croak("$method: no answer") });
    $obj->$method(%args,
                  on_success => sub { $cv->send(@_) },
                  on_failure => sub {
                      $cv->croak(join ' ', "$method failed:",
                                 map { ref $_ ? $_->method_frame->reply_code : $_ } @_);
                  });
    return $cv->recv;
}

my $closed = AnyEvent->condvar;
my $ar = call(AnyEvent::RabbitMQ->new->load_xml_spec(), 'connect',
              host => $host, port => $port, user => 'guest', pass => 'guest', vhost => '/',
              timeout => 5, tune => { heartbeat => 10 },
              on_close => sub { $closed->send(@_) },
              on_read_failure => sub { print "read failure @_\n" });
my $caps = $ar->server_properties->{capabilities};
print 'connected ', join(',', map { "$_" } grep { $caps->{$_} } sort keys %$caps), "\n";

my $ch = call($ar, 'open_channel');
my $x = "ae.$tag.direct";
call($ch, 'declare_exchange', exchange => $x, type => 'direct', auto_delete => 1);
my $q = call($ch, 'declare_queue', queue => '', exclusive => 1)->method_frame->queue;
call($ch, 'bind_queue', queue => $q, exchange => $x, routing_key => 'k');

# Confirms: each publish gets its ack.
call($ch, 'confirm');
my $acks = AnyEvent->condvar;
$acks->begin for 1 .. 5;
for my $i (1 .. 5) {
    $ch->publish(exchange => $x, routing_key => 'k', body => "m$i",
                 header => { content_type => 'text/plain', headers => { n => $i } },
                 on_ack => sub { $acks->end }, on_nack => sub { print "nacked $i\n"; $acks->end });
}
my $t = AnyEvent->timer(after => 5, cb => sub { $acks->croak('no acks') });
$acks->recv;
print "confirmed 5\n";

# basic.get: the first message with its properties, then the rest by a consumer.
my $got = call($ch, 'get', queue => $q, no_ack => 0);
my $h = $got->{header};
print 'get ', $got->{body}->payload, ' ', $h->content_type, ' n=', $h->headers->{n},
      ' redelivered=', $got->{ok}->method_frame->redelivered, "\n";
$ch->ack(delivery_tag => $got->{ok}->method_frame->delivery_tag);

call($ch, 'qos', prefetch_count => 2);
my @bodies;
my $all = AnyEvent->condvar;
my $consumer = call($ch, 'consume', queue => $q, no_ack => 0,
                    on_consume => sub {
                        my $m = shift;
                        push @bodies, $m->{body}->payload;
                        $ch->ack(delivery_tag => $m->{deliver}->method_frame->delivery_tag);
                        $all->send if @bodies == 4;
                    });
my $t2 = AnyEvent->timer(after => 5, cb => sub { $all->croak('consume: ' . join(',', @bodies)) });
$all->recv;
print 'consumed ', join(',', @bodies), "\n";
call($ch, 'cancel', consumer_tag => $consumer->method_frame->consumer_tag);

# Transactions.
my $tx = call($ar, 'open_channel');
call($tx, 'select_tx');
$tx->publish(exchange => $x, routing_key => 'k', body => 'rolled back');
call($tx, 'rollback_tx');
$tx->publish(exchange => $x, routing_key => 'k', body => 'committed');
call($tx, 'commit_tx');
my $after = call($tx, 'declare_queue', queue => $q, passive => 1)->method_frame->message_count;
print "tx $after\n";

# A channel error: a passive declare of a queue that does not exist closes the channel with
# 404; the connection goes on.
my $bad_close = AnyEvent->condvar;
my $bad = call($ar, 'open_channel',
               on_close => sub {
                   my $m = shift->method_frame;
                   $bad_close->send($m->reply_code . ' ' . (split / - /, $m->reply_text)[0]);
               });
eval { call($bad, 'declare_queue', queue => "ae.$tag.missing", passive => 1); 1 }
    and print "passive no error\n";
my $t3 = AnyEvent->timer(after => 5, cb => sub { $bad_close->send('no channel.close') });
print 'passive ', $bad_close->recv, "\n";
print 'channel open after error ', ($bad->is_open ? 1 : 0), ', connection open ',
      ($ar->is_open ? 1 : 0), "\n";

call($ar, 'close');
print "done\n";
