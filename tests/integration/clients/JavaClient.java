// RabbitMQ's Java client (Debian's librabbitmq-client-java) against a broker:
//   java -cp amqp-client.jar:slf4j-api.jar:slf4j-nop.jar JavaClient.java HOST PORT HTTP_PORT TAG
// Prints one line per check; the test compares them with what RabbitMQ 3.10 answers.

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.AlreadyClosedException;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.MessageProperties;
import com.rabbitmq.client.Recoverable;
import com.rabbitmq.client.RecoveryListener;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class JavaClient {
  static String host;
  static int port;
  static int httpPort;
  static String tag;

  static void say(String line) {
    System.out.println(line);
    System.out.flush();
  }

  static String body(byte[] b) {
    return new String(b, StandardCharsets.UTF_8);
  }

  static GetResponse getWithin(Channel ch, String queue, long millis) throws Exception {
    long deadline = System.currentTimeMillis() + millis;
    while (true) {
      GetResponse r = ch.basicGet(queue, true);
      if (r != null || System.currentTimeMillis() > deadline) return r;
      Thread.sleep(20);
    }
  }

  static String reason(Exception e) {
    Throwable t = e;
    while (t != null && !(t instanceof ShutdownSignalException)) t = t.getCause();
    if (t == null) return "no shutdown signal: " + e;
    Object m = ((ShutdownSignalException) t).getReason();
    if (m instanceof AMQP.Channel.Close) {
      AMQP.Channel.Close c = (AMQP.Channel.Close) m;
      return "channel " + c.getReplyCode() + " " + c.getReplyText().split(" - ")[0];
    }
    if (m instanceof AMQP.Connection.Close) {
      AMQP.Connection.Close c = (AMQP.Connection.Close) m;
      return "connection " + c.getReplyCode() + " " + c.getReplyText().split(" - ")[0];
    }
    return String.valueOf(m);
  }

  static HttpResponse<String> http(String method, String path) throws Exception {
    String auth =
        Base64.getEncoder().encodeToString("guest:guest".getBytes(StandardCharsets.UTF_8));
    HttpRequest req = HttpRequest.newBuilder(URI.create("http://" + host + ":" + httpPort + path))
        .header("Authorization", "Basic " + auth)
        .method(method, HttpRequest.BodyPublishers.noBody())
        .build();
    return HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
  }

  // The top-level objects of a JSON array, as text (braces inside strings are skipped).
  static List<String> objects(String json) {
    List<String> out = new ArrayList<>();
    int depth = 0, start = -1;
    boolean inString = false;
    for (int i = 0; i < json.length(); i++) {
      char c = json.charAt(i);
      if (inString) {
        if (c == '\\') i++;
        else if (c == '"') inString = false;
      } else if (c == '"') {
        inString = true;
      } else if (c == '{') {
        if (depth++ == 0) start = i;
      } else if (c == '}') {
        if (--depth == 0) out.add(json.substring(start, i + 1));
      }
    }
    return out;
  }

  // The API's name ("client address:port -> broker address:port") of the connection whose
  // client-provided name is `clientName`, once the API lists it. The only key spelt "name"
  // with a quote before it is the connection's own.
  static String connectionNamed(String clientName) throws Exception {
    Pattern apiName = Pattern.compile("\"name\":\"([^\"]*)\"");
    for (int i = 0; i < 200; i++) {
      String json = http("GET", "/api/connections?columns=name,client_properties").body();
      for (String one : objects(json)) {
        if (!one.contains("\"connection_name\":\"" + clientName + "\"")) continue;
        Matcher n = apiName.matcher(one);
        if (n.find()) return n.group(1);
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException("the API does not list connection " + clientName);
  }

  public static void main(String[] args) {
    try {
      run(args);
    } catch (Throwable e) {
      e.printStackTrace();
      System.exit(1);
    }
    System.exit(0);  // the client's threads may outlive a failed check
  }

  static void run(String[] args) throws Exception {
    host = args[0];
    port = Integer.parseInt(args[1]);
    httpPort = Integer.parseInt(args[2]);
    tag = args[3];
    ConnectionFactory f = new ConnectionFactory();
    f.setHost(host);
    f.setPort(port);
    f.setNetworkRecoveryInterval(200);
    f.setRequestedHeartbeat(10);
    String name = "java-" + tag;
    Connection conn = f.newConnection(name);
    Channel ch = conn.createChannel();

    // What the server says it can do (the client turns features on by these).
    @SuppressWarnings("unchecked")
    Map<String, Object> caps = (Map<String, Object>) conn.getServerProperties().get("capabilities");
    List<String> on = new ArrayList<>();
    for (String k : new TreeSet<>(caps.keySet())) if (Boolean.TRUE.equals(caps.get(k))) on.add(k);
    say("capabilities " + String.join(",", on));

    // A topic exchange bound to a headers exchange, a queue behind each.
    String topic = "java." + tag + ".topic";
    String headers = "java." + tag + ".headers";
    ch.exchangeDeclare(topic, "topic", false, true, null);
    ch.exchangeDeclare(headers, "headers", false, true, null);
    ch.exchangeBind(headers, topic, "orders.#");
    String hq = ch.queueDeclare().getQueue();
    Map<String, Object> match = new HashMap<>();
    match.put("x-match", "all");
    match.put("region", "eu");
    match.put("kind", "order");
    ch.queueBind(hq, headers, "", match);
    for (String region : new String[] {"eu", "us"}) {
      Map<String, Object> h = new HashMap<>();
      h.put("region", region);
      h.put("kind", "order");
      ch.basicPublish(topic, "orders.new", new AMQP.BasicProperties.Builder().headers(h).build(),
          ("order " + region).getBytes(StandardCharsets.UTF_8));
    }
    ch.basicPublish(topic, "invoices.new",
        new AMQP.BasicProperties.Builder().headers(match).build(),
        "invoice".getBytes(StandardCharsets.UTF_8));
    GetResponse got = getWithin(ch, hq, 5000);
    say("e2e " + (got == null ? "none" : body(got.getBody())) + " left "
        + ch.messageCount(hq));

    // TTL and dead-lettering: the expired message arrives with its x-death.
    String dlx = "java." + tag + ".dlx";
    ch.exchangeDeclare(dlx, "fanout", false, true, null);
    String dead = ch.queueDeclare("", false, true, true, null).getQueue();
    ch.queueBind(dead, dlx, "");
    Map<String, Object> ttlArgs = new HashMap<>();
    ttlArgs.put("x-message-ttl", 100);
    ttlArgs.put("x-dead-letter-exchange", dlx);
    String ttlq = ch.queueDeclare("java." + tag + ".ttl", false, false, true, ttlArgs).getQueue();
    ch.basicPublish("", ttlq, MessageProperties.PERSISTENT_TEXT_PLAIN,
        "expiring".getBytes(StandardCharsets.UTF_8));
    got = getWithin(ch, dead, 5000);
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> deaths =
        (List<Map<String, Object>>) got.getProps().getHeaders().get("x-death");
    Map<String, Object> death = deaths.get(0);
    say("dead-lettered " + body(got.getBody()) + " reason " + death.get("reason") + " queue "
        + (death.get("queue").toString().equals(ttlq) ? "ttl" : death.get("queue")) + " count "
        + death.get("count") + " content-type " + got.getProps().getContentType());

    // A quorum queue with a delivery limit: the message that keeps coming back is counted
    // (x-delivery-count, a long), then dead-lettered.
    Map<String, Object> quorumArgs = new HashMap<>();
    quorumArgs.put("x-queue-type", "quorum");
    quorumArgs.put("x-delivery-limit", 1);
    quorumArgs.put("x-dead-letter-exchange", dlx);
    String qq = ch.queueDeclare("java." + tag + ".quorum", true, false, false, quorumArgs)
        .getQueue();
    Channel qc = conn.createChannel();
    qc.confirmSelect();
    qc.basicPublish("", qq, null, "poison".getBytes(StandardCharsets.UTF_8));
    qc.waitForConfirmsOrDie(5000);
    List<String> counts = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      GetResponse r = qc.basicGet(qq, false);
      Object count = r == null ? null : r.getProps().getHeaders().get("x-delivery-count");
      counts.add(count == null ? "none" : count.getClass().getSimpleName() + " " + count);
      if (r != null) qc.basicNack(r.getEnvelope().getDeliveryTag(), false, true);
    }
    got = getWithin(ch, dead, 5000);
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> quorumDeaths =
        (List<Map<String, Object>>) got.getProps().getHeaders().get("x-death");
    say("quorum counts " + counts + " then " + body(got.getBody()) + " reason "
        + quorumDeaths.get(0).get("reason") + " left " + ch.messageCount(qq));
    ch.queueDelete(qq);
    qc.close();

    // Confirms and a mandatory message that comes back.
    Channel cf = conn.createChannel();
    BlockingQueue<String> returns = new ArrayBlockingQueue<>(10);
    cf.addReturnListener((code, text, ex, key, props, b) -> returns.add(code + " " + text));
    cf.confirmSelect();
    String work = ch.queueDeclare("java." + tag + ".work", true, false, false, null).getQueue();
    for (int i = 0; i < 20; i++)
      cf.basicPublish("", work, MessageProperties.PERSISTENT_BASIC,
          ("w" + i).getBytes(StandardCharsets.UTF_8));
    cf.basicPublish("", "java." + tag + ".nowhere", true, null, new byte[0]);
    cf.waitForConfirmsOrDie(5000);
    say("confirmed returned " + returns.poll(5, TimeUnit.SECONDS));

    // A consumer with prefetch 5 that acks each message by hand.
    Channel cc = conn.createChannel();
    cc.basicQos(5);
    List<String> seen = new ArrayList<>();
    CountDownLatch all = new CountDownLatch(20);
    CountDownLatch cancelled = new CountDownLatch(1);
    cc.basicConsume(work, false, "java-consumer", new DefaultConsumer(cc) {
      @Override
      public void handleDelivery(String ctag, Envelope env, AMQP.BasicProperties p, byte[] b)
          throws IOException {
        synchronized (seen) {
          seen.add(body(b));
        }
        getChannel().basicAck(env.getDeliveryTag(), false);
        all.countDown();
      }

      @Override
      public void handleCancel(String ctag) {
        cancelled.countDown();
      }
    });
    say("consumed " + all.await(10, TimeUnit.SECONDS) + " " + seen.get(0) + ".." + seen.get(19));

    // Deleting the queue cancels its consumer (consumer_cancel_notify).
    ch.queueDelete(work);
    say("cancel notified " + cancelled.await(5, TimeUnit.SECONDS));

    // Direct reply-to: a request answered to amq.rabbitmq.reply-to.
    String service = ch.queueDeclare("", false, true, true, null).getQueue();
    Channel server = conn.createChannel();
    server.basicConsume(service, true, (ctag, d) -> {
      AMQP.BasicProperties reply = new AMQP.BasicProperties.Builder()
          .correlationId(d.getProperties().getCorrelationId()).build();
      server.basicPublish("", d.getProperties().getReplyTo(), reply,
          ("re: " + body(d.getBody())).getBytes(StandardCharsets.UTF_8));
    }, ctag -> {});
    Channel client = conn.createChannel();
    BlockingQueue<String> replies = new ArrayBlockingQueue<>(1);
    client.basicConsume("amq.rabbitmq.reply-to", true,
        (ctag, d) -> replies.add(d.getProperties().getCorrelationId() + " " + body(d.getBody())),
        ctag -> {});
    client.basicPublish("", service, new AMQP.BasicProperties.Builder()
        .replyTo("amq.rabbitmq.reply-to").correlationId("c-1").build(),
        "ping".getBytes(StandardCharsets.UTF_8));
    say("rpc " + replies.poll(5, TimeUnit.SECONDS));

    // Transactions.
    Channel tx = conn.createChannel();
    String txq = tx.queueDeclare("", false, true, true, null).getQueue();
    tx.txSelect();
    tx.basicPublish("", txq, null, "rolled back".getBytes(StandardCharsets.UTF_8));
    tx.txRollback();
    tx.basicPublish("", txq, null, "committed".getBytes(StandardCharsets.UTF_8));
    tx.txCommit();
    say("tx " + tx.messageCount(txq) + " " + body(getWithin(ch, txq, 5000).getBody()));

    // Channel errors: 404 on a passive declare, 405 on another connection's exclusive queue.
    Channel bad = conn.createChannel();
    try {
      bad.exchangeDeclarePassive("java." + tag + ".missing");
      say("passive no error");
    } catch (IOException e) {
      say("passive " + reason(e) + " open " + bad.isOpen());
    }
    String mine =
        ch.queueDeclare("java." + tag + ".exclusive", false, true, false, null).getQueue();
    Connection other = f.newConnection("java-other-" + tag);
    Channel theirs = other.createChannel();
    try {
      theirs.queueDeclare(mine, false, true, false, null);
      say("exclusive no error");
    } catch (IOException e) {
      say("exclusive " + reason(e));
    }
    other.close();
    say("connection still open " + conn.isOpen());

    // Automatic recovery: the connection is closed from the management API; the client
    // reconnects, declares its server-named queue and consumer again and goes on.
    Channel rc = conn.createChannel();
    String rq = rc.queueDeclare().getQueue();
    rc.queueBind(rq, topic, "recovery.#");
    BlockingQueue<String> arrived = new ArrayBlockingQueue<>(10);
    rc.basicConsume(rq, true, (ctag, d) -> arrived.add(body(d.getBody())), ctag -> {});
    CountDownLatch recovered = new CountDownLatch(1);
    ((Recoverable) conn).addRecoveryListener(new RecoveryListener() {
      public void handleRecovery(Recoverable r) {
        recovered.countDown();
      }

      public void handleRecoveryStarted(Recoverable r) {}
    });
    String connName = connectionNamed(name);
    int status = http("DELETE", "/api/connections/"
        + URLEncoder.encode(connName, StandardCharsets.UTF_8).replace("+", "%20")).statusCode();
    boolean back = recovered.await(15, TimeUnit.SECONDS);
    rc.basicPublish(topic, "recovery.after", null,
        "after recovery".getBytes(StandardCharsets.UTF_8));
    say("recovery delete " + status + " recovered " + back + " got "
        + arrived.poll(5, TimeUnit.SECONDS));

    ch.queueDelete(ttlq);
    conn.close();
    try {
      ch.basicPublish("", "x", null, new byte[0]);
    } catch (AlreadyClosedException e) {
      say("closed " + reason(e));
    }
    say("done");
  }
}
