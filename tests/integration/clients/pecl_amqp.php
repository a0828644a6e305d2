<?php
// PHP's amqp extension (PECL amqp on librabbitmq, Debian's php-amqp) against a broker:
//   php pecl_amqp.php HOST PORT TAG
// Prints one line per check; the test compares them with what RabbitMQ 3.10 answers.
[$_, $host, $port, $tag] = $argv;

$conn = new AMQPConnection(['host' => $host, 'port' => (int)$port, 'login' => 'guest',
                            'password' => 'guest', 'vhost' => '/', 'read_timeout' => 5,
                            'connection_name' => "pecl-$tag"]);
$conn->connect();
$ch = new AMQPChannel($conn);

// A direct exchange with an alternate exchange for what it cannot route.
$alt = new AMQPExchange($ch);
$alt->setName("pecl.$tag.alt");
$alt->setType(AMQP_EX_TYPE_FANOUT);
$alt->setFlags(AMQP_AUTODELETE);
$alt->declareExchange();
$ex = new AMQPExchange($ch);
$ex->setName("pecl.$tag.direct");
$ex->setType(AMQP_EX_TYPE_DIRECT);
$ex->setFlags(AMQP_AUTODELETE);
$ex->setArgument('alternate-exchange', "pecl.$tag.alt");
$ex->declareExchange();

$q = new AMQPQueue($ch);
$q->setName("pecl.$tag.q");
$q->setFlags(AMQP_DURABLE);
$q->setArgument('x-max-priority', 5);
$q->declareQueue();
$q->bind("pecl.$tag.direct", 'k');
$lost = new AMQPQueue($ch);
$lost->setFlags(AMQP_EXCLUSIVE);
$lost->declareQueue();
$lost->bind("pecl.$tag.alt");

$ex->publish('low', 'k', AMQP_NOPARAM, ['priority' => 1, 'headers' => ['n' => 1]]);
$ex->publish('high', 'k', AMQP_NOPARAM,
             ['priority' => 5, 'content_type' => 'text/plain', 'delivery_mode' => 2,
              'message_id' => 'm-1', 'headers' => ['n' => 2, 'list' => [1, 2], 's' => 'x']]);
$ex->publish('unroutable', 'other');
usleep(200000);

function get_within($q, $flags = AMQP_AUTOACK) {
    for ($i = 0; $i < 250; $i++) {
        $m = $q->get($flags);
        if ($m !== false) return $m;
        usleep(20000);
    }
    return false;
}

$m = get_within($q);
$h = $m->getHeaders();
ksort($h);
echo 'first ', $m->getBody(), ' priority=', $m->getPriority(), ' ', $m->getContentType(), ' ',
     $m->getDeliveryMode(), ' ', $m->getMessageId(), ' ', json_encode($h), "\n";
$m = get_within($q, AMQP_NOPARAM);
$q->nack($m->getDeliveryTag(), AMQP_REQUEUE);
$m = get_within($q, AMQP_NOPARAM);
echo 'requeued ', $m->getBody(), ' redelivered=', $m->isRedelivery() ? 'yes' : 'no', "\n";
$q->ack($m->getDeliveryTag());
$m = get_within($lost);
echo 'alternate ', $m ? $m->getBody() : 'none', ' via ', $m ? $m->getExchangeName() : '-', "\n";

// A consumer with prefetch 2: consume() runs the callback until it returns false.
$ch->setPrefetchCount(2);
for ($i = 1; $i <= 4; $i++) $ex->publish("c$i", 'k');
$seen = [];
$q->consume(function (AMQPEnvelope $e, AMQPQueue $queue) use (&$seen) {
    $seen[] = $e->getBody();
    $queue->ack($e->getDeliveryTag());
    return count($seen) < 4;
});
$q->cancel();
echo 'consumed ', implode(',', $seen), "\n";

// Transactions.
$ch->startTransaction();
$ex->publish('rolled back', 'k');
$ch->rollbackTransaction();
$ch->startTransaction();
$ex->publish('committed', 'k');
$ch->commitTransaction();
usleep(100000);
echo 'tx ', $q->declareQueue(), "\n";
$q->purge();

// A channel error: a passive declare of a missing queue throws, the channel is gone.
$bad = new AMQPChannel($conn);
$missing = new AMQPQueue($bad);
$missing->setName("pecl.$tag.missing");
$missing->setFlags(AMQP_PASSIVE);
try {
    $missing->declareQueue();
    echo "passive no error\n";
} catch (AMQPQueueException $e) {
    echo 'passive ', $e->getCode(), ' ', explode(' - ', $e->getMessage())[0], ' channel ',
         $bad->isConnected() ? 'open' : 'closed', "\n";
}
$q->delete();
$conn->disconnect();
echo "done\n";
