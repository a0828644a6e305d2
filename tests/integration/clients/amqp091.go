// RabbitMQ's Go client (Debian's golang-github-rabbitmq-amqp091-go-dev) against a broker:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go run amqp091.go HOST PORT TAG
//
// Prints one line per check; the test compares them with what RabbitMQ 3.10 answers.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func must(err error, what string) {
	if err != nil {
		fmt.Printf("%s failed: %v\n", what, err)
		os.Exit(1)
	}
}

func get(ch *amqp.Channel, q string) amqp.Delivery {
	for i := 0; i < 250; i++ {
		d, ok, err := ch.Get(q, true)
		must(err, "get")
		if ok {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("get: nothing in", q)
	os.Exit(1)
	return amqp.Delivery{}
}

// A header value with its Go type, as the client decoded it.
func typed(v interface{}) string {
	switch x := v.(type) {
	case amqp.Table:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, k+"="+typed(x[k]))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case []interface{}:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, typed(e))
		}
		return "[" + strings.Join(parts, " ") + "]"
	case time.Time:
		return fmt.Sprintf("time.Time(%d)", x.Unix())
	case []byte:
		return fmt.Sprintf("[]byte(%s)", string(x))
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

func main() {
	host, port, tag := os.Args[1], os.Args[2], os.Args[3]
	conn, err := amqp.DialConfig("amqp://guest:guest@"+host+":"+port+"/", amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "go-" + tag},
	})
	must(err, "dial")
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	fmt.Println("connected", conn.Major, conn.Minor, conn.Properties["product"] != nil)

	ch, err := conn.Channel()
	must(err, "channel")

	// Every field type the client writes, through a queue and back.
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(err, "declare")
	headers := amqp.Table{
		"bool":    true,
		"int8":    int8(-8),
		"int16":   int16(-16),
		"int32":   int32(-32),
		"int64":   int64(-64),
		"float32": float32(1.5),
		"float64": float64(2.25),
		"string":  "text",
		"bytes":   []byte("raw"),
		"decimal": amqp.Decimal{Scale: 2, Value: 12345},
		"time":    time.Unix(1700000000, 0),
		"nil":     nil,
		"array":   []interface{}{int32(1), "two", true},
		"table":   amqp.Table{"inner": int32(7)},
	}
	must(ch.Publish("", q.Name, false, false, amqp.Publishing{
		Headers: headers, ContentType: "text/plain", DeliveryMode: amqp.Persistent, Priority: 4,
		CorrelationId: "c", ReplyTo: "r", Expiration: "60000", MessageId: "m",
		Timestamp: time.Unix(1700000000, 0), Type: "t", UserId: "guest", AppId: "go",
		Body: []byte("typed"),
	}), "publish")
	d := get(ch, q.Name)
	fmt.Println("headers", typed(d.Headers))
	fmt.Println("properties", d.ContentType, d.DeliveryMode, d.Priority, d.CorrelationId, d.ReplyTo,
		d.Expiration, d.MessageId, d.Timestamp.Unix(), d.Type, d.UserId, d.AppId, string(d.Body))

	// A priority queue hands out the highest priority first.
	pq, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{"x-max-priority": int32(9)})
	must(err, "declare priority")
	for _, p := range []uint8{1, 9, 5} {
		must(ch.Publish("", pq.Name, false, false, amqp.Publishing{
			Priority: p, Body: []byte(fmt.Sprint(p))}), "publish priority")
	}
	time.Sleep(100 * time.Millisecond)
	order := []string{}
	for i := 0; i < 3; i++ {
		order = append(order, string(get(ch, pq.Name).Body))
	}
	fmt.Println("priority order", strings.Join(order, ","))

	// Confirms, and a mandatory message that comes back.
	cf, err := conn.Channel()
	must(err, "channel")
	must(cf.Confirm(false), "confirm")
	confirms := cf.NotifyPublish(make(chan amqp.Confirmation, 20))
	returns := cf.NotifyReturn(make(chan amqp.Return, 1))
	for i := 0; i < 10; i++ {
		must(cf.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("c")}), "publish")
	}
	must(cf.Publish("", "go."+tag+".nowhere", true, false, amqp.Publishing{Body: []byte("x")}),
		"publish mandatory")
	acked := 0
	for i := 0; i < 11; i++ {
		select {
		case c := <-confirms:
			if c.Ack {
				acked++
			}
		case <-time.After(5 * time.Second):
			fmt.Println("confirm timeout")
			os.Exit(1)
		}
	}
	r := <-returns
	fmt.Println("confirms", acked, "returned", r.ReplyCode, r.ReplyText)
	_, err = ch.QueuePurge(q.Name, false)
	must(err, "purge")

	// A consumer with prefetch 2 acking by hand, then cancelled by the queue's deletion.
	work, err := ch.QueueDeclare("go."+tag+".work", false, false, false, false, nil)
	must(err, "declare work")
	for i := 0; i < 6; i++ {
		must(ch.Publish("", work.Name, false, false, amqp.Publishing{Body: []byte(fmt.Sprint("w", i))}),
			"publish work")
	}
	cc, err := conn.Channel()
	must(err, "channel")
	must(cc.Qos(2, 0, false), "qos")
	cancels := cc.NotifyCancel(make(chan string, 1))
	deliveries, err := cc.Consume(work.Name, "go-consumer", false, false, false, false, nil)
	must(err, "consume")
	got := []string{}
	for len(got) < 6 {
		select {
		case m := <-deliveries:
			got = append(got, string(m.Body))
			must(m.Ack(false), "ack")
		case <-time.After(5 * time.Second):
			fmt.Println("consume timeout", got)
			os.Exit(1)
		}
	}
	fmt.Println("consumed", strings.Join(got, ","))
	n, err := ch.QueueDelete(work.Name, false, false, false)
	must(err, "delete")
	select {
	case t := <-cancels:
		fmt.Println("cancelled", t, "deleted with", n)
	case <-time.After(5 * time.Second):
		fmt.Println("no cancel notification")
	}

	// Transactions.
	tx, err := conn.Channel()
	must(err, "channel")
	must(tx.Tx(), "tx.select")
	must(tx.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("rolled back")}), "publish")
	must(tx.TxRollback(), "rollback")
	must(tx.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("committed")}), "publish")
	must(tx.TxCommit(), "commit")
	inspected, err := ch.QueueInspect(q.Name)
	must(err, "inspect")
	fmt.Println("tx", inspected.Messages, string(get(ch, q.Name).Body))

	// A channel error: 404 closes that channel only.
	bad, err := conn.Channel()
	must(err, "channel")
	badClosed := bad.NotifyClose(make(chan *amqp.Error, 1))
	_, err = bad.QueueDeclarePassive("go."+tag+".missing", false, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		fmt.Println("passive", amqpErr.Code, strings.SplitN(amqpErr.Reason, " - ", 2)[0],
			amqpErr.Server, (<-badClosed).Code)
	} else {
		fmt.Println("passive", err)
	}
	_, err = ch.QueueInspect(q.Name)
	fmt.Println("other channel after error", err == nil)

	must(conn.Close(), "close")
	if e, ok := <-closed; ok {
		fmt.Println("closed with", e)
	} else {
		fmt.Println("closed")
	}
	fmt.Println("done")
}
