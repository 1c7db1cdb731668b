// Command tutorials runs RabbitMQ's six getting-started tutorials (hello, work, pubsub,
// routing, topics, rpc) as a newcomer runs them with the Go client (Debian's
// golang-github-rabbitmq-amqp091-go-dev, 1.5.0), each checked end to end.
// scripts/tutorials/go.sh builds it in GOPATH mode and runs it.
//
//	tutorials CONSUMER_URL PRODUCER_URL classic|quorum [SCENARIO...]
//
// Everything that consumes (hello receiver, workers, log subscribers, RPC server) connects to
// CONSUMER_URL and has its consume-ok before anything is published; everything that publishes
// (hello sender, new_task, emit_log*, RPC client) connects to PRODUCER_URL with its own
// connection. One line per scenario: "tutorial go <kind> <scenario>: ok (<ms> ms)", or
// "... FAIL <reason>" and exit status 1. Names carry the suffix -go-<kind>-<8 hex>; each
// scenario deletes its named queues and exchanges at the end.
//
// classic: the tutorials' original declarations (hello and rpc_queue non-durable, task_queue
// durable with persistent messages, subscribers on server-named exclusive queues).
// quorum: their current form (hello, task_queue, rpc_queue durable with x-queue-type=quorum;
// each subscriber on a named durable quorum queue; the RPC callback queue stays exclusive).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const client = "go"

var allScenarios = []string{"hello", "work", "pubsub", "routing", "topics", "rpc"}

const (
	// Explicit waits give up this long after a scenario starts; a watchdog a second later
	// catches any call that hangs; cleanup gets 3 s more (14 s in all).
	waitTime     = 10 * time.Second
	watchdogTime = 11 * time.Second
	cleanupTime  = 3 * time.Second
	// After the expected deliveries arrive, how long to keep listening for extra ones.
	settleTime = 300 * time.Millisecond
)

// failure is a scenario's failure with the reason to print as it is.
type failure struct{ reason string }

func (f *failure) Error() string { return f.reason }

func fail(format string, a ...interface{}) error {
	return &failure{fmt.Sprintf(format, a...)}
}

// run is one scenario's run: its URLs and kind, deadline, connections and names to delete.
type run struct {
	consumerURL, producerURL string
	quorum                   bool
	suffix                   string
	waitDeadline             time.Time
	// errs carries consumers that stopped early (channel closed, consumer cancelled).
	errs chan error

	mu        sync.Mutex
	step      string // what the scenario is doing now, for the watchdog's message
	conns     []*amqp.Connection
	queues    []string
	exchanges []string
}

func (r *run) setStep(format string, a ...interface{}) {
	r.mu.Lock()
	r.step = fmt.Sprintf(format, a...)
	r.mu.Unlock()
}

func (r *run) currentStep() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.step
}

func (r *run) name(base string) string { return base + r.suffix }

func (r *run) addQueue(q string) {
	r.mu.Lock()
	r.queues = append(r.queues, q)
	r.mu.Unlock()
}

func (r *run) addExchange(x string) {
	r.mu.Lock()
	r.exchanges = append(r.exchanges, x)
	r.mu.Unlock()
}

// connect opens a connection for role (as amqp.Dial does in the tutorials) and a channel on it.
func (r *run) connect(url, role string) (*amqp.Channel, error) {
	r.setStep("connecting the %s", role)
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.conns = append(r.conns, conn)
	r.mu.Unlock()
	r.setStep("opening a channel for the %s", role)
	return conn.Channel()
}

// declareNamedQueue declares one of the tutorials' named queues (hello, task_queue, rpc_queue).
func (r *run) declareNamedQueue(ch *amqp.Channel, queue string, classicDurable bool,
	role string) error {
	r.setStep("%s declaring queue %s", role, queue)
	var err error
	if r.quorum {
		_, err = ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	} else {
		_, err = ch.QueueDeclare(queue, classicDurable, false, false, false, nil)
	}
	return err
}

// declareSubscriberQueue declares a log subscriber's queue: server-named exclusive (classic)
// or a named durable quorum queue (quorum).
func (r *run) declareSubscriberQueue(ch *amqp.Channel, exchangeBase, label string) (string, error) {
	r.setStep("subscriber %s declaring its queue", label)
	if !r.quorum {
		q, err := ch.QueueDeclare("", false, false, true, false, nil)
		return q.Name, err
	}
	queue := r.name(exchangeBase + "-" + label)
	r.addQueue(queue)
	_, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	return queue, err
}

// consume starts a consumer for role and hands each delivery to handle on its own goroutine;
// if the deliveries stop (channel closed, consumer cancelled) it reports that on r.errs.
func (r *run) consume(ch *amqp.Channel, queue string, autoAck bool, role string,
	handle func(amqp.Delivery) error) error {
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	r.setStep("%s consuming %s", role, queue)
	msgs, err := ch.Consume(queue, "", autoAck, false, false, false, nil)
	if err != nil {
		return err
	}
	go func() {
		for d := range msgs {
			if err := handle(d); err != nil {
				r.report(fmt.Errorf("%s: %w", role, err))
				return
			}
		}
		select {
		case e := <-closed:
			if e != nil {
				r.report(fmt.Errorf("%s's channel was closed: %w", role, e))
				return
			}
		default:
		}
		r.report(fail("%s's consumer on %s stopped (cancelled or its channel closed)", role, queue))
	}()
	return nil
}

func (r *run) report(err error) {
	select {
	case r.errs <- err:
	default:
	}
}

// publish publishes as the tutorials do, bounded by the scenario's deadline.
func (r *run) publish(ch *amqp.Channel, exchange, key string, msg amqp.Publishing) error {
	ctx, cancel := context.WithDeadline(context.Background(), r.waitDeadline)
	defer cancel()
	return ch.PublishWithContext(ctx, exchange, key, false, false, msg)
}

// collect waits for n messages on inbox (or times out naming what is missing), then listens
// settleTime more for extra ones. It returns everything received.
func (r *run) collect(inbox <-chan string, n int, what string) ([]string, error) {
	r.setStep("waiting for %s", what)
	var got []string
	timeout := time.NewTimer(time.Until(r.waitDeadline))
	defer timeout.Stop()
	for len(got) < n {
		select {
		case m := <-inbox:
			got = append(got, m)
		case err := <-r.errs:
			return got, err
		case <-timeout.C:
			return got, fail("timed out after %d ms waiting for %s: got %d of %d %q",
				waitTime.Milliseconds(), what, len(got), n, got)
		}
	}
	settle := time.NewTimer(settleTime)
	defer settle.Stop()
	for {
		select {
		case m := <-inbox:
			got = append(got, m)
		case err := <-r.errs:
			return got, err
		case <-settle.C:
			return got, nil
		}
	}
}

// expectSame fails unless got and expected hold the same messages, in any order.
func expectSame(who string, got, expected []string) error {
	g := append([]string(nil), got...)
	e := append([]string(nil), expected...)
	sort.Strings(g)
	sort.Strings(e)
	if strings.Join(g, "\x00") != strings.Join(e, "\x00") || len(g) != len(e) {
		return fail("%s got %q, expected %q", who, got, expected)
	}
	return nil
}

func text(body string) amqp.Publishing {
	return amqp.Publishing{ContentType: "text/plain", Body: []byte(body)}
}

// ---- 1. "Hello World!" -------------------------------------------------------------------

func hello(r *run) error {
	queue := r.name("hello")
	r.addQueue(queue)

	recv, err := r.connect(r.consumerURL, "receiver")
	if err != nil {
		return err
	}
	if err := r.declareNamedQueue(recv, queue, false, "receiver"); err != nil {
		return err
	}
	inbox := make(chan string, 100)
	if err := r.consume(recv, queue, true, "receiver", func(d amqp.Delivery) error {
		inbox <- string(d.Body)
		return nil
	}); err != nil {
		return err
	}

	send, err := r.connect(r.producerURL, "sender")
	if err != nil {
		return err
	}
	if err := r.declareNamedQueue(send, queue, false, "sender"); err != nil {
		return err
	}
	r.setStep("sender publishing")
	if err := r.publish(send, "", queue, text("Hello World!")); err != nil {
		return err
	}

	got, err := r.collect(inbox, 1, `"Hello World!" on `+queue)
	if err != nil {
		return err
	}
	return expectSame("receiver", got, []string{"Hello World!"})
}

// ---- 2. Work queues ------------------------------------------------------------------------

var tasks = []string{
	"First message.", "Second message..", "Third message...",
	"Fourth message.", "Fifth message..", "Sixth message...",
}

func work(r *run) error {
	queue := r.name("task_queue")
	r.addQueue(queue)
	done := make(chan string, 100) // "worker<i>:<task>"

	for i := 1; i <= 2; i++ {
		worker := fmt.Sprintf("worker%d", i)
		ch, err := r.connect(r.consumerURL, worker)
		if err != nil {
			return err
		}
		if err := r.declareNamedQueue(ch, queue, true, worker); err != nil {
			return err
		}
		r.setStep("%s setting prefetch 1", worker)
		if err := ch.Qos(1, 0, false); err != nil {
			return err
		}
		if err := r.consume(ch, queue, false, worker, func(d amqp.Delivery) error {
			time.Sleep(time.Duration(bytes.Count(d.Body, []byte("."))) * 100 * time.Millisecond)
			if err := d.Ack(false); err != nil {
				return err
			}
			done <- worker + ":" + string(d.Body)
			return nil
		}); err != nil {
			return err
		}
	}

	send, err := r.connect(r.producerURL, "new_task")
	if err != nil {
		return err
	}
	if err := r.declareNamedQueue(send, queue, true, "new_task"); err != nil {
		return err
	}
	r.setStep("new_task publishing")
	for _, task := range tasks {
		msg := text(task)
		msg.DeliveryMode = amqp.Persistent
		if err := r.publish(send, "", queue, msg); err != nil {
			return err
		}
	}

	got, err := r.collect(done, len(tasks), "the workers to process 6 tasks")
	if err != nil {
		return err
	}
	var processed []string
	perWorker := map[string]int{}
	for _, g := range got {
		parts := strings.SplitN(g, ":", 2)
		perWorker[parts[0]]++
		processed = append(processed, parts[1])
	}
	if err := expectSame("the workers", processed, tasks); err != nil {
		return err
	}
	if len(perWorker) != 2 {
		return fail("one worker did all the tasks: %v", perWorker)
	}
	return nil
}

// ---- 3-5. Publish/subscribe, routing, topics -----------------------------------------------

type subscriber struct {
	label    string
	bindings []string
	expected []string // "routing key:body"
}

type logMessage struct{ key, body string }

// logs runs the three log tutorials: each subscriber binds its queue to the exchange with its
// binding keys and consumes with auto-ack; the emitter publishes; each subscriber must receive
// exactly its expected "routing key:body" messages.
func logs(r *run, exchangeBase, kind string, subs []subscriber, publishes []logMessage) error {
	exchange := r.name(exchangeBase)
	r.addExchange(exchange)
	inboxes := make([]chan string, len(subs))

	for i, sub := range subs {
		role := "subscriber " + sub.label
		ch, err := r.connect(r.consumerURL, role)
		if err != nil {
			return err
		}
		r.setStep("%s declaring exchange %s", role, exchange)
		if err := ch.ExchangeDeclare(exchange, kind, false, false, false, false, nil); err != nil {
			return err
		}
		queue, err := r.declareSubscriberQueue(ch, exchangeBase, sub.label)
		if err != nil {
			return err
		}
		for _, key := range sub.bindings {
			r.setStep("%s binding %s with '%s'", role, queue, key)
			if err := ch.QueueBind(queue, key, exchange, false, nil); err != nil {
				return err
			}
		}
		inbox := make(chan string, 100)
		inboxes[i] = inbox
		if err := r.consume(ch, queue, true, role, func(d amqp.Delivery) error {
			inbox <- d.RoutingKey + ":" + string(d.Body)
			return nil
		}); err != nil {
			return err
		}
	}

	emit, err := r.connect(r.producerURL, "emitter")
	if err != nil {
		return err
	}
	r.setStep("emitter declaring exchange %s", exchange)
	if err := emit.ExchangeDeclare(exchange, kind, false, false, false, false, nil); err != nil {
		return err
	}
	r.setStep("emitter publishing")
	for _, p := range publishes {
		if err := r.publish(emit, exchange, p.key, text(p.body)); err != nil {
			return err
		}
	}

	for i, sub := range subs {
		who := "subscriber " + sub.label
		got, err := r.collect(inboxes[i], len(sub.expected), fmt.Sprintf("%s's %q", who, sub.expected))
		if err != nil {
			return err
		}
		if err := expectSame(who, got, sub.expected); err != nil {
			return err
		}
	}
	return nil
}

func pubsub(r *run) error {
	publishes := []logMessage{
		{"", "info: Hello World! #1"}, {"", "info: Hello World! #2"}, {"", "info: Hello World! #3"},
	}
	var all []string
	for _, p := range publishes {
		all = append(all, p.key+":"+p.body)
	}
	return logs(r, "logs", "fanout", []subscriber{
		{"a", []string{""}, all},
		{"b", []string{""}, all},
	}, publishes)
}

func routing(r *run) error {
	return logs(r, "direct_logs", "direct", []subscriber{
		{"a", []string{"error"}, []string{"error:Hello World!"}},
		{"b", []string{"info", "warning", "error"},
			[]string{"info:Hello World!", "warning:Hello World!", "error:Hello World!"}},
	}, []logMessage{{"info", "Hello World!"}, {"warning", "Hello World!"}, {"error", "Hello World!"}})
}

func topics(r *run) error {
	return logs(r, "topic_logs", "topic", []subscriber{
		{"a", []string{"*.critical"},
			[]string{"kern.critical:A critical kernel error", "app.critical:A critical app error"}},
		{"b", []string{"kern.#"},
			[]string{"kern.critical:A critical kernel error", "kern.info:A kernel note"}},
	}, []logMessage{
		{"kern.critical", "A critical kernel error"}, {"kern.info", "A kernel note"},
		{"app.critical", "A critical app error"}, {"app.info", "An app note"},
	})
}

// ---- 6. RPC --------------------------------------------------------------------------------

func fib(n int) int {
	a, b := 0, 1
	for i := 0; i < n; i++ {
		a, b = b, a+b
	}
	return a
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func rpc(r *run) error {
	queue := r.name("rpc_queue")
	r.addQueue(queue)

	server, err := r.connect(r.consumerURL, "rpc server")
	if err != nil {
		return err
	}
	if err := r.declareNamedQueue(server, queue, false, "rpc server"); err != nil {
		return err
	}
	r.setStep("rpc server setting prefetch 1")
	if err := server.Qos(1, 0, false); err != nil {
		return err
	}
	if err := r.consume(server, queue, false, "rpc server", func(d amqp.Delivery) error {
		n, err := strconv.Atoi(string(d.Body))
		if err != nil {
			return err
		}
		reply := text(strconv.Itoa(fib(n)))
		reply.CorrelationId = d.CorrelationId
		if err := r.publish(server, "", d.ReplyTo, reply); err != nil {
			return err
		}
		return d.Ack(false)
	}); err != nil {
		return err
	}

	client, err := r.connect(r.producerURL, "rpc client")
	if err != nil {
		return err
	}
	r.setStep("rpc client declaring its callback queue")
	callback, err := client.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		return err
	}
	replies := make(chan amqp.Delivery, 100)
	if err := r.consume(client, callback.Name, true, "rpc client", func(d amqp.Delivery) error {
		replies <- d
		return nil
	}); err != nil {
		return err
	}

	timeout := time.NewTimer(time.Until(r.waitDeadline))
	defer timeout.Stop()
	for _, n := range []int{30, 10, 1} {
		corrID := randomHex(16)
		msg := text(strconv.Itoa(n))
		msg.CorrelationId = corrID
		msg.ReplyTo = callback.Name
		r.setStep("rpc client requesting fib(%d)", n)
		if err := r.publish(client, "", queue, msg); err != nil {
			return err
		}
		r.setStep("rpc client waiting for fib(%d)", n)
		select {
		case d := <-replies:
			if d.CorrelationId != corrID {
				return fail("reply '%s' to fib(%d) has correlation id %s, expected %s",
					d.Body, n, d.CorrelationId, corrID)
			}
			if string(d.Body) != strconv.Itoa(fib(n)) {
				return fail("fib(%d) replied '%s', expected %d", n, d.Body, fib(n))
			}
		case err := <-r.errs:
			return err
		case <-timeout.C:
			return fail("timed out after %d ms waiting for the reply to fib(%d) on %s",
				waitTime.Milliseconds(), n, callback.Name)
		}
	}
	return nil
}

// ---- Running -------------------------------------------------------------------------------

var scenarios = map[string]func(*run) error{
	"hello": hello, "work": work, "pubsub": pubsub, "routing": routing, "topics": topics, "rpc": rpc,
}

// cleanup closes the run's connections (gracefully after a success), then deletes its named
// queues and exchanges over a fresh connection to each distinct URL (in case the two URLs do
// not reach the same broker). It returns what went wrong.
func cleanup(r *run, graceful bool) error {
	r.mu.Lock()
	conns := append([]*amqp.Connection(nil), r.conns...)
	queues := append([]string(nil), r.queues...)
	exchanges := append([]string(nil), r.exchanges...)
	r.mu.Unlock()

	var problems []string
	for _, c := range conns {
		if err := c.Close(); err != nil && graceful && !errors.Is(err, amqp.ErrClosed) {
			problems = append(problems, "closing a connection: "+err.Error())
		}
	}
	if len(queues)+len(exchanges) > 0 {
		urls := []string{r.producerURL}
		if r.consumerURL != r.producerURL {
			urls = append(urls, r.consumerURL)
		}
		for _, url := range urls {
			problems = append(problems, deleteAll(url, queues, exchanges)...)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// deleteAll deletes queues and exchanges through url, one channel each (a failed delete
// closes its channel), and returns what went wrong.
func deleteAll(url string, queues, exchanges []string) []string {
	conn, err := amqp.Dial(url)
	if err != nil {
		return []string{"connecting for cleanup: " + err.Error()}
	}
	defer conn.Close()
	var problems []string
	deleteEach := func(what string, names []string, del func(*amqp.Channel, string) error) {
		for _, name := range names {
			ch, err := conn.Channel()
			if err == nil {
				err = del(ch, name)
				ch.Close()
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("deleting %s %s: %v", what, name, err))
			}
		}
	}
	deleteEach("queue", queues, func(ch *amqp.Channel, q string) error {
		_, err := ch.QueueDelete(q, false, false, false)
		return err
	})
	deleteEach("exchange", exchanges, func(ch *amqp.Channel, x string) error {
		return ch.ExchangeDelete(x, false, false)
	})
	return problems
}

// runOne runs a scenario with its time limits and returns "" or the failure reason.
func runOne(scenario string, r *run) string {
	result := make(chan error, 1)
	go func() { result <- scenarios[scenario](r) }()
	reason := ""
	select {
	case err := <-result:
		if err != nil {
			var f *failure
			if errors.As(err, &f) {
				reason = f.reason
			} else {
				reason = fmt.Sprintf("while %s: %v", r.currentStep(), err)
			}
		}
	case <-time.After(watchdogTime):
		reason = fmt.Sprintf("timed out after %d ms while %s",
			watchdogTime.Milliseconds(), r.currentStep())
	}
	cleaned := make(chan error, 1)
	go func() { cleaned <- cleanup(r, reason == "") }()
	select {
	case err := <-cleaned:
		if reason == "" && err != nil {
			reason = "cleanup: " + err.Error()
		}
	case <-time.After(cleanupTime):
		if reason == "" {
			reason = fmt.Sprintf("cleanup timed out after %d ms", cleanupTime.Milliseconds())
		}
	}
	return reason
}

func main() {
	args := os.Args[1:]
	if len(args) < 3 || (args[2] != "classic" && args[2] != "quorum") {
		fmt.Fprintf(os.Stderr, "usage: tutorials CONSUMER_URL PRODUCER_URL classic|quorum [%s]...\n",
			strings.Join(allScenarios, "|"))
		os.Exit(2)
	}
	kind := args[2]
	chosen := allScenarios
	if len(args) > 3 {
		chosen = args[3:]
	}
	for _, s := range chosen {
		if scenarios[s] == nil {
			fmt.Fprintf(os.Stderr, "unknown scenario '%s'; known: %v\n", s, allScenarios)
			os.Exit(2)
		}
	}
	for _, scenario := range chosen {
		start := time.Now()
		r := &run{
			consumerURL:  args[0],
			producerURL:  args[1],
			quorum:       kind == "quorum",
			suffix:       fmt.Sprintf("-%s-%s-%s", client, kind, randomHex(4)),
			waitDeadline: start.Add(waitTime),
			errs:         make(chan error, 16),
			step:         "starting",
		}
		line := fmt.Sprintf("tutorial %s %s %s: ", client, kind, scenario)
		if reason := runOne(scenario, r); reason != "" {
			fmt.Println(line + "FAIL " + reason)
			os.Exit(1)
		}
		fmt.Printf("%sok (%d ms)\n", line, time.Since(start).Milliseconds())
	}
}
