package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Kafka test broker: org.apache.kafka:kafka_2.13 from Maven Central, installed by
// scripts/kafka.sh. QUIVER_KAFKA_HOME names the install directory (its libs/ is the class
// path); unset, the helper runs the script. The JVM is QUIVER_KAFKA_JAVA_HOME/bin/java, else
// java on PATH (Kafka 4 needs Java 17 or newer).
const (
	kafkaHomeEnv      = "QUIVER_KAFKA_HOME"
	kafkaJavaEnv      = "QUIVER_KAFKA_JAVA_HOME"
	kafkaScript       = "kafka.sh"
	kafkaStartTimeout = 120 * time.Second
	kafkaHeap         = "512m"
)

// Kafka is a throwaway single-node Kafka cluster in KRaft mode (one process that is both
// controller and broker) on loopback ports, its log directory in a temporary directory.
type Kafka struct {
	// Addr is the broker's host:port, the bootstrap address for clients.
	Addr string `json:"addr"`
	// Dir is the server's directory: server.properties, data/, and its log in kafka.log.
	Dir string `json:"dir"`

	proc *process
}

// StartKafka formats a KRaft log directory and starts one broker on free loopback ports in a
// temporary directory, waits until it answers a metadata request naming itself, and stops it
// when t cleans up.
func StartKafka(t TB) *Kafka {
	t.Helper()
	k, err := startKafka(t.TempDir(), false)
	if err != nil {
		t.Fatalf("start kafka: %v", err)
	}
	t.Cleanup(k.proc.stop)
	t.Logf("kafka listening on %s (dir %s)", k.Addr, k.Dir)
	return k
}

// SharedKafka returns the broker shared by the test run (see RunDirEnv) or, without a run
// directory, by this test binary (started on first use, stopped when t, normally TestMain's
// MainTB, cleans up). Tests isolate themselves with NewTopic.
func SharedKafka(t TB) *Kafka {
	t.Helper()
	return sharedServer(t, "kafka", "kafka", StartKafka, func(dir string) (*Kafka, *process, error) {
		k, err := startKafka(dir, true)
		if err != nil {
			return nil, nil, err
		}
		return k, k.proc, nil
	}, func(k *Kafka) string { return fmt.Sprintf("%s (dir %s)", k.Addr, k.Dir) })
}

func startKafka(dir string, detached bool) (*Kafka, error) {
	home, err := installed(kafkaHomeEnv, kafkaScript)
	if err != nil {
		return nil, err
	}
	var java string
	if h := os.Getenv(kafkaJavaEnv); h != "" {
		java = filepath.Join(h, "bin", "java")
	} else if java, err = LookBinary("java", "openjdk-17-jre-headless"); err != nil {
		return nil, err
	}
	classpath := filepath.Join(home, "libs", "*")
	logConf := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(logConf, []byte(kafkaLog4j), 0o644); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		k, err := tryStartKafka(java, classpath, logConf, dir, detached)
		if err == nil || attempt == 3 || !portTaken(err) {
			return k, err
		}
	}
}

// kafkaLog4j keeps the broker's log to warnings, plus the line that says it started.
const kafkaLog4j = `rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
`

func tryStartKafka(java, classpath, logConf, dir string, detached bool) (*Kafka, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	controller, err := FreePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.RemoveAll(data); err != nil { // a retry formats afresh
		return nil, err
	}
	k := &Kafka{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
	props := strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.voters=1@127.0.0.1:" + strconv.Itoa(controller),
		"listeners=PLAINTEXT://" + k.Addr + ",CONTROLLER://127.0.0.1:" + strconv.Itoa(controller),
		"advertised.listeners=PLAINTEXT://" + k.Addr,
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"inter.broker.listener.name=PLAINTEXT",
		"log.dirs=" + data,
		"num.partitions=1",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=4",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=4",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"auto.create.topics.enable=false",
		"delete.topic.enable=true",
	}, "\n") + "\n"
	propsPath := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsPath, []byte(props), 0o644); err != nil {
		return nil, err
	}
	jvm := []string{
		"-Xms64m", "-Xmx" + kafkaHeap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + logConf,
		"-cp", classpath,
	}
	logPath := filepath.Join(dir, "kafka.log")

	// kafka-storage.sh format: writes meta.properties and the bootstrap metadata.
	format, err := startProcess("kafka-storage format", java, append(append([]string{}, jvm...),
		"kafka.tools.StorageTool", "format", "-t", newKafkaClusterID(), "-c", propsPath),
		processOptions{Dir: dir, Log: logPath})
	if err != nil {
		return nil, err
	}
	select {
	case <-format.done:
		if format.exitErr != nil {
			return nil, fmt.Errorf("kafka-storage format: %v\n%s", format.exitErr, logTail(logPath, 40))
		}
	case <-time.After(kafkaStartTimeout):
		format.kill()
		return nil, fmt.Errorf("kafka-storage format did not finish within %s\n%s", kafkaStartTimeout, logTail(logPath, 40))
	}

	p, err := startProcess("kafka", java, append(append([]string{}, jvm...), "kafka.Kafka", propsPath),
		processOptions{Dir: dir, Log: logPath, Detached: detached})
	if err != nil {
		return nil, err
	}
	k.proc = p
	if err := waitReady(p, kafkaStartTimeout, k.probe); err != nil {
		p.stop()
		return nil, err
	}
	return k, nil
}

// newKafkaClusterID returns a random cluster id as kafka-storage random-uuid does: 16 random
// bytes, base64url without padding, never starting with '-' (Kafka's Uuid.randomUuid rejects
// those too: kafka-storage format would read one as an option and fail, 1 start in 64).
func newKafkaClusterID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

// probe asks the broker for cluster metadata and checks that it names itself as a broker and
// a controller is elected.
func (k *Kafka) probe() error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata request: %w", err)
	}
	if len(md.Brokers) == 0 || md.Controller < 0 {
		return fmt.Errorf("metadata names %d brokers and controller %d", len(md.Brokers), md.Controller)
	}
	return nil
}

// Client returns a franz-go client seeded with the broker; opts are added. It is closed when t
// cleans up.
func (k *Kafka) Client(t TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client for %s: %v", k.Addr, err)
	}
	t.Cleanup(cl.Close)
	return cl
}

var topicSeq atomic.Int64

// NewTopic creates a topic with a unique name and the given number of partitions for one test
// and returns its name; it is deleted when t cleans up.
func (k *Kafka) NewTopic(t TB, partitions int32) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("t%d-%s", topicSeq.Add(1), hex.EncodeToString(rnd[:]))
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	if err != nil {
		t.Fatalf("kafka client for %s: %v", k.Addr, err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		cl.Close()
		t.Fatalf("create topic %s (%d partitions) on %s: %v", name, partitions, k.Addr, err)
	}
	t.Cleanup(func() {
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopic(ctx, name); err != nil {
			t.Logf("delete topic %s: %v", name, err)
		}
	})
	return name
}
