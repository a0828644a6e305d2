# subscribe to messages from the queue 'foo'
use Net::Stomp;
my $stomp = Net::Stomp->new({hostname=>$ENV{STOMP_HOST}, port=>$ENV{STOMP_PORT}});
$stomp->connect({login=>'guest', passcode=>'guest'});
$stomp->subscribe({'destination'=>'foo', 'ack'=>'client'});
while (1) {
my $frame = $stomp->receive_frame;
print $frame->body . "n";
last if $frame->body eq 'QUIT';
}
