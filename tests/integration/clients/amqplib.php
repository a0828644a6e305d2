<?php
// php-amqplib against a broker: php amqplib.php HOST PORT TAG
// Prints one line per check; the test compares them with what RabbitMQ 3.10 answers.
require_once '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;

[$_, $host, $port, $tag] = $argv;
$conn = new AMQPStreamConnection($host, (int)$port, 'guest', 'guest', '/', false, 'AMQPLAIN',
                                 null, 'en_US', 5.0, 5.0);
$ch = $conn->channel();

function get_body($ch, $q) {
    for ($i = 0; $i < 250; $i++) {
        $m = $ch->basic_get($q, true);
        if ($m !== null) return $m->getBody();
        usleep(20000);
    }
    return 'none';
}

function drain($ch, $q) {
    $out = [];
    while (($m = $ch->basic_get($q, true)) !== null) $out[] = $m->getBody();
    return implode(',', $out);
}

// A topic exchange: one key matches the binding, one does not.
$x = "php.$tag.topic";
$ch->exchange_declare($x, 'topic', false, false, true);
[$q] = $ch->queue_declare('', false, false, true, true);
$ch->queue_bind($q, $x, 'logs.*.error');
$ch->basic_publish(new AMQPMessage('hit'), $x, 'logs.web.error');
$ch->basic_publish(new AMQPMessage('miss'), $x, 'logs.web.info');
echo 'topic ', get_body($ch, $q), ' ', drain($ch, $q) === '' ? 'only' : 'more', "\n";

// x-max-length drops from the head.
$lim = "php.$tag.limited";
$ch->queue_declare($lim, false, false, false, false, false, new AMQPTable(['x-max-length' => 2]));
foreach (['m1', 'm2', 'm3'] as $b) $ch->basic_publish(new AMQPMessage($b), '', $lim);
usleep(100000);
echo 'max-length ', drain($ch, $lim), "\n";

// Every property and a table of every type the library writes, there and back.
$props = new AMQPMessage('props', [
    'content_type' => 'application/json', 'content_encoding' => 'utf-8',
    'delivery_mode' => AMQPMessage::DELIVERY_MODE_PERSISTENT, 'priority' => 3,
    'correlation_id' => 'corr-1', 'reply_to' => 'back', 'expiration' => '60000',
    'message_id' => 'id-1', 'timestamp' => 1700000000, 'type' => 'kind',
    'user_id' => 'guest', 'app_id' => 'php',
    'application_headers' => new AMQPTable([
        'int' => 42, 'neg' => -7, 'big' => 5000000000, 'str' => 'text', 'yes' => true,
        'float' => 2.5, 'list' => [1, 'two', 3], 'nested' => ['inner' => 'v'],
    ]),
]);
[$pq] = $ch->queue_declare('', false, false, true, true);
$ch->basic_publish($props, '', $pq);
$got = null;
for ($i = 0; $i < 250 && $got === null; $i++) { $got = $ch->basic_get($pq, true); usleep(10000); }
$seen = [];
foreach (['content_type', 'content_encoding', 'delivery_mode', 'priority', 'correlation_id',
          'reply_to', 'expiration', 'message_id', 'timestamp', 'type', 'user_id', 'app_id'] as $k) {
    $seen[] = "$k=" . $got->get($k);
}
echo 'props ', implode(' ', $seen), "\n";
$h = $got->get('application_headers')->getNativeData();
ksort($h);
echo 'headers ', json_encode($h), "\n";

// qos 2 with a consumer that acks by hand.
$cq = "php.$tag.consume";
$ch->queue_declare($cq, false, false, false, false);
for ($i = 1; $i <= 5; $i++) $ch->basic_publish(new AMQPMessage("c$i"), '', $cq);
$cch = $conn->channel();
$cch->basic_qos(0, 2, false);
$bodies = [];
$cch->basic_consume($cq, 'php-consumer', false, false, false, false,
    function ($m) use (&$bodies) { $bodies[] = $m->getBody(); $m->ack(); });
while (count($bodies) < 5) $cch->wait(null, false, 5);
$cch->basic_cancel('php-consumer');
echo 'consume ', implode(',', $bodies), "\n";

// nack with requeue comes back redelivered.
$ch->basic_publish(new AMQPMessage('again'), '', $cq);
$m = null;
for ($i = 0; $i < 250 && $m === null; $i++) { $m = $ch->basic_get($cq); usleep(10000); }
$m->nack(true);
$m2 = $ch->basic_get($cq);
echo 'requeue ', $m2->getBody(), ' redelivered=', $m2->isRedelivered() ? 'yes' : 'no', "\n";
$m2->ack();

// Transactions: a rolled-back publish is not there, a committed one is.
$tq = "php.$tag.tx";
$tch = $conn->channel();
$tch->queue_declare($tq, false, false, false, false);
$tch->tx_select();
$tch->basic_publish(new AMQPMessage('rolled back'), '', $tq);
$tch->tx_rollback();
$tch->basic_publish(new AMQPMessage('committed'), '', $tq);
$tch->tx_commit();
[, $count] = $tch->queue_declare($tq, true);
echo "after tx $count ", drain($tch, $tq), "\n";

// Publisher confirms, and a mandatory message nobody can take comes back.
$fch = $conn->channel();
$acks = 0;
$returned = [];
$fch->set_ack_handler(function ($m) use (&$acks) { $acks++; });
$fch->set_return_listener(function ($code, $text, $ex, $key, $m) use (&$returned) {
    $returned[] = "$code $text $key " . $m->getBody();
});
$fch->confirm_select();
for ($i = 0; $i < 10; $i++) $fch->basic_publish(new AMQPMessage("f$i"), '', $cq);
$fch->basic_publish(new AMQPMessage('lost'), '', "php.$tag.nowhere", true);
$fch->wait_for_pending_acks_returns(5);
echo "confirms $acks returned ", implode('|', $returned), "\n";
$ch->queue_purge($cq);

// A passive declare of a missing queue closes the channel with 404; the connection lives on.
try {
    $xch = $conn->channel();
    $xch->queue_declare("php.$tag.missing", true);
    echo "passive no error\n";
} catch (AMQPProtocolChannelException $e) {
    echo 'passive ', $e->getCode(), ' ', explode(' - ', $e->getMessage())[0], "\n";
}
$again = $conn->channel();
[$aq] = $again->queue_declare('', false, false, true, true);
$again->basic_publish(new AMQPMessage('still here'), '', $aq);
echo 'after error ', get_body($again, $aq), "\n";

$ch->queue_delete($lim);
$ch->queue_delete($cq);
$ch->queue_delete($tq);
$conn->close();
echo "done\n";
