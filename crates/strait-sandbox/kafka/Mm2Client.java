// MirrorMaker 2's client library, asked from the command line, for the tests that check that it
// reads what strait writes and that strait reads what MM2 writes. Run as a single source file:
//   java -cp <kafka classpath> Mm2Client.java translate <bootstrap> <source alias> <group>
//     one line per partition: "<remote topic> <partition> <offset>" (RemoteClusterUtils.translateOffsets)
//   java -cp <kafka classpath> Mm2Client.java describe <bootstrap>
//     one line per question: "<name>\t<answers, comma-separated and sorted>" (MirrorClient)

import java.time.Duration;
import java.util.Map;
import java.util.HashMap;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.mirror.MirrorClient;
import org.apache.kafka.connect.mirror.RemoteClusterUtils;

public class Mm2Client {
    public static void main(String[] args) throws Exception {
        Map<String, Object> props = new HashMap<>();
        props.put("bootstrap.servers", args[1]);
        switch (args[0]) {
            case "translate": {
                Map<TopicPartition, OffsetAndMetadata> got =
                    RemoteClusterUtils.translateOffsets(props, args[2], args[3], Duration.ofSeconds(30));
                TreeMap<String, Long> sorted = new TreeMap<>();
                got.forEach((tp, om) -> sorted.put(tp.topic() + " " + tp.partition(), om.offset()));
                sorted.forEach((k, v) -> System.out.println(k + " " + v));
                break;
            }
            case "describe": {
                try (MirrorClient client = new MirrorClient(props)) {
                    line("heartbeatTopics", client.heartbeatTopics());
                    line("checkpointTopics", client.checkpointTopics());
                    Set<String> upstream = client.upstreamClusters();
                    line("upstreamClusters", upstream);
                    line("remoteTopics", client.remoteTopics());
                    for (String u : new TreeSet<>(upstream)) {
                        System.out.println("replicationHops " + u + "\t" + client.replicationHops(u));
                    }
                }
                break;
            }
            default:
                System.err.println("unknown command " + args[0]);
                System.exit(2);
        }
    }

    static void line(String name, Set<String> values) {
        System.out.println(name + "\t" + String.join(",", new TreeSet<>(values)));
    }
}
