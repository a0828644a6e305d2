# The Ruby stomp gem (Debian's ruby-stomp) against a broker: ruby stomp_client.rb HOST PORT TAG
# Prints one line per check; the test compares them with what RabbitMQ 3.10 answers.
require 'stomp'
require 'timeout'

host, port, tag = ARGV
$stdout.sync = true

def connect(host, port)
  Stomp::Connection.new(
    hosts: [{ login: 'guest', passcode: 'guest', host: host, port: port.to_i }],
    connect_headers: { 'accept-version' => '1.2', 'host' => '/', 'heart-beat' => '0,0' },
    reliable: false, connect_timeout: 5, parse_timeout: 5)
end

def receive(conn)
  Timeout.timeout(5) { conn.receive }
rescue Timeout::Error
  nil
end

c = connect(host, port)
puts "connected #{c.protocol} #{c.connection_frame.command}"
q = "/queue/ruby.#{tag}"

# Receipts: each SEND asks for one.
%w[one two three].each_with_index do |body, i|
  c.publish(q, body, 'receipt' => "r#{i}", 'x-custom' => "c#{i}")
  r = receive(c)
  puts "receipt #{r.command} #{r.headers['receipt-id']}" if i.zero?
end

# client-individual: the second is acked, the first NACKed (it comes back), the third left.
c.subscribe(q, { 'ack' => 'client-individual', 'id' => 's1' })
got = (1..3).map { receive(c) }
puts "received #{got.map(&:body).join(',')} #{got[0].headers['x-custom']}"
c.ack(got[1].headers['ack'])
c.nack(got[0].headers['ack'])
again = receive(c)
puts "nacked comes back #{again.body} redelivered=#{again.headers['redelivered']}"
c.ack(again.headers['ack'])
c.unsubscribe(q, {}, 's1')
c.disconnect

# The unacked third goes back to the queue when the connection closes.
c = connect(host, port)
c.subscribe(q, { 'ack' => 'client', 'id' => 's2' })
m = receive(c)
puts "after reconnect #{m.body} redelivered=#{m.headers['redelivered']}"
c.ack(m.headers['ack'])
c.unsubscribe(q, {}, 's2')

# A transaction: its SENDs and ACKs count only on COMMIT.
c.begin('t1')
c.publish(q, 'aborted', 'transaction' => 't1')
c.abort('t1')
c.begin('t2')
c.publish(q, 'committed', 'transaction' => 't2')
c.commit('t2')
c.subscribe(q, { 'ack' => 'auto', 'id' => 's3' })
m = receive(c)
puts "tx #{m.body}"
c.unsubscribe(q, {}, 's3')

# Request and reply over a temporary queue.
svc = "/queue/ruby.#{tag}.svc"
server = connect(host, port)
server.subscribe(svc, { 'id' => 'svc', 'receipt' => 'svc-ready' })
receive(server)  # the receipt: the subscription is in place
c.publish(svc, 'ping', 'reply-to' => '/temp-queue/replies', 'correlation-id' => 'k1')
req = receive(server)
server.publish(req.headers['reply-to'], "re: #{req.body}",
               'correlation-id' => req.headers['correlation-id'])
reply = receive(c)
via = reply.headers['subscription']
via = 'temp-queue' if via == '/temp-queue/replies'
puts "rpc #{reply.body} #{reply.headers['correlation-id']} #{via}"
server.disconnect

# A durable topic subscription keeps what was sent while it was away.
t = "/topic/ruby.#{tag}"
d = connect(host, port)
d.subscribe(t, { 'id' => "dur-#{tag}", 'durable' => 'true', 'auto-delete' => 'false',
                 'receipt' => 'dur' })
receive(d)
d.disconnect('receipt' => 'gone') # (without one, the SEND below could overtake it)
c.publish(t, 'while away', 'persistent' => 'true', 'receipt' => 'away')
receive(c)
d = connect(host, port)
d.subscribe(t, { 'id' => "dur-#{tag}", 'durable' => 'true', 'auto-delete' => 'false' })
m = receive(d)
puts "durable #{m && m.body}"
d.unsubscribe(t, { 'durable' => 'true', 'persistent' => 'true' }, "dur-#{tag}")
d.disconnect

# An ERROR for a frame the broker cannot take, then the server closes.
c.publish('/nonsense/x', 'body', 'receipt' => 'bad')
e = receive(c)
puts "error #{e && e.command} #{e && e.headers['message']}"
puts 'done'
