// The JVM counterpart of test/python/decode_all.py: reads every committed message of every topic with a
// prefix using the Kafka Java client, and decodes the Confluent framing (magic byte 0, big-endian schema
// id, Avro binary) with Apache Avro's Java library and the writer schema fetched by id from the
// registry's Confluent-compatible API, logical-type conversions on (timestamps become Instants).
// Prints the same JSON shape as decode_all.py: {"topics": {...}, "errors": [...]}.
//
// usage: java -cp 'lib/*' DecodeAll.java --bootstrap HOST:PORT --registry URL --prefix PREFIX [--timeout S]

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import org.apache.avro.Schema;
import org.apache.avro.data.TimeConversions;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class DecodeAll {
  static final ObjectMapper JSON = new ObjectMapper();
  static final HttpClient HTTP = HttpClient.newHttpClient();
  static final Map<Integer, Schema> SCHEMAS = new HashMap<>();
  static final GenericData DATA = new GenericData();

  static {
    DATA.addLogicalTypeConversion(new TimeConversions.TimestampMillisConversion());
    DATA.addLogicalTypeConversion(new TimeConversions.TimestampMicrosConversion());
    DATA.addLogicalTypeConversion(new TimeConversions.TimestampNanosConversion());
    DATA.addLogicalTypeConversion(new TimeConversions.LocalTimestampMillisConversion());
    DATA.addLogicalTypeConversion(new TimeConversions.LocalTimestampMicrosConversion());
    DATA.addLogicalTypeConversion(new TimeConversions.LocalTimestampNanosConversion());
  }

  static String registry;

  static JsonNode getJson(String path) throws Exception {
    HttpResponse<String> res =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(registry + path)).timeout(Duration.ofSeconds(15)).build(),
            HttpResponse.BodyHandlers.ofString());
    if (res.statusCode() != 200) throw new IllegalStateException("GET " + path + ": " + res.statusCode() + " " + res.body());
    return JSON.readTree(res.body());
  }

  /**
   * Whether the topic's value subject exists, asked per subject: a registry's subject listing can be
   * capped (Apicurio's ccompat lists at most 1,000), and a long-lived stack holds more than that.
   */
  static boolean hasValueSubject(String topic) throws Exception {
    String path = "/subjects/" + java.net.URLEncoder.encode(topic + "-value", java.nio.charset.StandardCharsets.UTF_8) + "/versions/latest";
    HttpResponse<String> res =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(registry + path)).timeout(Duration.ofSeconds(15)).build(),
            HttpResponse.BodyHandlers.ofString());
    if (res.statusCode() == 404) return false;
    if (res.statusCode() != 200) throw new IllegalStateException("GET " + path + ": " + res.statusCode() + " " + res.body());
    return true;
  }

  static Schema schema(int id) throws Exception {
    Schema s = SCHEMAS.get(id);
    if (s == null) {
      s = new Schema.Parser().parse(getJson("/schemas/ids/" + id).get("schema").asText());
      SCHEMAS.put(id, s);
    }
    return s;
  }

  /** Confluent framing → the datum; the whole payload must be consumed. */
  static Object decode(byte[] bytes) throws Exception {
    if (bytes.length < 5 || bytes[0] != 0) throw new IllegalArgumentException("not Confluent framing");
    int id = ByteBuffer.wrap(bytes, 1, 4).getInt();
    Schema writer = schema(id);
    BinaryDecoder decoder = DecoderFactory.get().binaryDecoder(bytes, 5, bytes.length - 5, null);
    Object datum = new GenericDatumReader<Object>(writer, writer, DATA).read(null, decoder);
    if (!decoder.isEnd()) throw new IllegalStateException("bytes left after the datum");
    return datum;
  }

  static int timestamps(Object v) {
    if (v instanceof Instant || v instanceof LocalDateTime) return 1;
    if (v instanceof GenericRecord r) {
      int n = 0;
      for (Schema.Field f : r.getSchema().getFields()) n += timestamps(r.get(f.pos()));
      return n;
    }
    if (v instanceof Collection<?> c) {
      int n = 0;
      for (Object o : c) n += timestamps(o);
      return n;
    }
    return 0;
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
    registry = args.get("registry").replaceAll("/+$", "");
    String prefix = args.get("prefix");
    long deadline = System.currentTimeMillis() + (long) (Double.parseDouble(args.getOrDefault("timeout", "120")) * 1000);

    Set<String> subjects = new HashSet<>();
    for (JsonNode s : getJson("/subjects")) subjects.add(s.asText());

    Properties props = new Properties();
    props.put("bootstrap.servers", args.get("bootstrap"));
    props.put("isolation.level", "read_committed");
    props.put("enable.auto.commit", "false");
    props.put("key.deserializer", ByteArrayDeserializer.class.getName());
    props.put("value.deserializer", ByteArrayDeserializer.class.getName());

    ObjectNode report = JSON.createObjectNode();
    ObjectNode topicsOut = report.putObject("topics");
    ArrayNode errors = report.putArray("errors");
    Set<String> topics;
    try (Admin admin = Admin.create(props)) {
      topics = new TreeSet<>(admin.listTopics().names().get());
    }
    topics.removeIf(t -> !t.startsWith(prefix));

    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (String t : topics) {
        ObjectNode stats = topicsOut.putObject(t);
        stats.put("format", hasValueSubject(t) ? "avro" : t.endsWith("dlq") ? "json" : "other");
        stats.put("messages", 0);
        stats.put("tombstones", 0);
        stats.put("timestamps", 0);
        stats.putObject("nulled");
        for (PartitionInfo p : consumer.partitionsFor(t)) partitions.add(new TopicPartition(t, p.partition()));
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      // With read_committed these are the last stable offsets: every committed record lies below.
      Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
      Set<TopicPartition> pending = new HashSet<>();
      for (TopicPartition tp : partitions) if (consumer.position(tp) < ends.get(tp)) pending.add(tp);
      while (!pending.isEmpty() && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> m : consumer.poll(Duration.ofSeconds(1))) {
          ObjectNode stats = (ObjectNode) topicsOut.get(m.topic());
          stats.put("messages", stats.get("messages").asInt() + 1);
          if (m.value() == null) stats.put("tombstones", stats.get("tombstones").asInt() + 1);
          if (!"avro".equals(stats.get("format").asText())) continue;
          for (String part : new String[] {"key", "value"}) {
            byte[] bytes = part.equals("key") ? m.key() : m.value();
            if (bytes == null) continue;
            try {
              Object datum = decode(bytes);
              if (part.equals("key") || !(datum instanceof GenericRecord record)) continue;
              stats.put("timestamps", stats.get("timestamps").asInt() + timestamps(record));
              Object nulled = record.hasField("_nulled_fields") ? record.get("_nulled_fields") : null;
              if (nulled instanceof Collection<?> paths) {
                ObjectNode counts = (ObjectNode) stats.get("nulled");
                for (Object p : paths) counts.put(p.toString(), counts.path(p.toString()).asInt(0) + 1);
              }
            } catch (Exception err) {
              ObjectNode e = errors.addObject();
              e.put("topic", m.topic());
              e.put("partition", m.partition());
              e.put("offset", m.offset());
              e.put("part", part);
              e.put("error", err.getClass().getSimpleName() + ": " + err.getMessage());
            }
          }
        }
        pending.removeIf(tp -> consumer.position(tp) >= ends.get(tp));
      }
      for (TopicPartition tp : pending) {
        ObjectNode e = errors.addObject();
        e.put("topic", tp.topic());
        e.put("partition", tp.partition());
        e.put("part", "consumer");
        e.put("error", "timed out");
      }
    }
    report.put("registry_subjects", subjects.size());
    System.out.println(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(report));
  }
}
