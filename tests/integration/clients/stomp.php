<?php
// PHP's stomp extension (PECL stomp) against a broker: php stomp.php HOST PORT TAG
// Prints one line per check; the test compares them with what RabbitMQ 3.10 answers.
[$_, $host, $port, $tag] = $argv;

function frame_line($f) {
    return $f === false ? 'none' : $f->body;
}

$s = new Stomp("tcp://$host:$port", 'guest', 'guest', ['accept-version' => '1.2', 'host' => '/']);
$s->setReadTimeout(5);
$q = "/queue/php.$tag";

// Custom headers travel; a frame with a receipt header waits for its RECEIPT.
$s->send($q, 'one', ['x-custom' => 'c1', 'persistent' => 'true', 'receipt' => 'sent-1']);
$s->send($q, 'two', ['content-type' => 'text/plain']);
$s->send($q, 'three');
$s->subscribe($q, ['id' => 'sub-1', 'ack' => 'client-individual', 'prefetch-count' => '10']);
$got = [];
for ($i = 0; $i < 3; $i++) $got[] = $s->readFrame();
$one = $got[0];
echo 'headers ', $one->headers['x-custom'] ?? '-', ' ', $one->headers['subscription'] ?? '-',
     ' ', $one->headers['destination'] ?? '-', "\n";
echo 'received ', implode(',', array_map('frame_line', $got)), "\n";
// client-individual: ack the second only; the others go back to the queue when the
// connection closes and come to the next subscriber.
// The extension names the message by message-id only; STOMP 1.2 wants the ack header as id.
$s->ack($got[1], ['id' => $got[1]->headers['ack']]);
unset($s);
$s = new Stomp("tcp://$host:$port", 'guest', 'guest', ['accept-version' => '1.2', 'host' => '/']);
$s->setReadTimeout(5);
$s->subscribe($q, ['id' => 'sub-2', 'ack' => 'auto']);
$back = [];
for ($i = 0; $i < 2; $i++) {
    $f = $s->readFrame();
    $back[] = frame_line($f) . ($f !== false ? '/' . $f->headers['redelivered'] : '');
}
sort($back);
echo 'unacked come back ', implode(',', $back), ' ', $s->hasFrame() ? 'more' : 'only', "\n";
$s->unsubscribe($q, ['id' => 'sub-2']);

// A transaction: aborted sends never arrive, committed ones do.
$s->begin('tx1');
$s->send($q, 'aborted', ['transaction' => 'tx1']);
$s->abort('tx1');
$s->begin('tx2');
$s->send($q, 'committed', ['transaction' => 'tx2']);
$s->commit('tx2');
$s->subscribe($q, ['id' => 'sub-3', 'ack' => 'auto']);
$f = $s->readFrame();
echo 'tx ', frame_line($f), ' ', $s->hasFrame() ? 'more' : 'only', "\n";
$s->unsubscribe($q, ['id' => 'sub-3']);

// A topic: two subscribers each get every message.
$t = "/topic/php.$tag";
$a = new Stomp("tcp://$host:$port", 'guest', 'guest', ['accept-version' => '1.2', 'host' => '/']);
$a->setReadTimeout(5);
$s->subscribe($t, ['id' => 't1', 'receipt' => 'sub-t1']);
$a->subscribe($t, ['id' => 't2', 'receipt' => 'sub-t2']);
$a->send($t, 'to all');
echo 'topic ', frame_line($s->readFrame()), ' / ', frame_line($a->readFrame()), "\n";

// A bad destination is refused with an ERROR (surfacing as an exception here).
try {
    $s->send('/nonsense/x', 'body');
    $f = $s->readFrame();
    echo 'bad destination ',
         $f === false ? 'no answer' : $f->command . ' ' . $f->headers['message'], "\n";
} catch (StompException $e) {
    echo 'bad destination error: ', $e->getMessage(), "\n";
}
unset($a, $s);
echo "done\n";
