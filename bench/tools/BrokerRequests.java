import com.sun.tools.attach.VirtualMachine;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * Requests per second a running Kafka broker serves, by API (its own RequestMetrics counters, read
 * over a local JMX agent attached to the process: no port, no broker restart). On 2 cores the
 * broker's CPU is mostly per request, so this says who loads it: the pipeline's transactions and
 * fetches, or the load driver and probe. Run: bench/tools/broker-requests.sh [SECONDS].
 *
 * Usage: java BrokerRequests.java PID SECONDS
 */
public class BrokerRequests {
  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: java BrokerRequests.java PID SECONDS");
      System.exit(2);
    }
    VirtualMachine vm = VirtualMachine.attach(args[0]);
    String address = vm.startLocalManagementAgent();
    vm.detach();
    int seconds = Integer.parseInt(args[1]);
    try (JMXConnector connector = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
      MBeanServerConnection mbeans = connector.getMBeanServerConnection();
      Map<String, Long> before = counts(mbeans);
      Thread.sleep(seconds * 1000L);
      Map<String, Long> after = counts(mbeans);
      List<Map.Entry<String, Long>> rows = new ArrayList<>();
      for (Map.Entry<String, Long> e : after.entrySet()) rows.add(Map.entry(e.getKey(), e.getValue() - before.getOrDefault(e.getKey(), 0L)));
      rows.sort((x, y) -> Long.compare(y.getValue(), x.getValue()));
      // "Fetch" counts every fetch; FetchConsumer/FetchFollower split it: left out of the total.
      long total = 0;
      for (Map.Entry<String, Long> e : rows) if (!e.getKey().startsWith("Fetch") || e.getKey().equals("Fetch")) total += e.getValue();
      System.out.printf("{\"seconds\":%d,\"requestsPerSec\":%.1f,\"byApi\":{", seconds, total / (double) seconds);
      String sep = "";
      for (Map.Entry<String, Long> e : rows) {
        if (e.getValue() <= 0) continue;
        System.out.printf("%s\"%s\":%.1f", sep, e.getKey(), e.getValue() / (double) seconds);
        sep = ",";
      }
      System.out.println("}}");
    }
  }

  /** Count of requests so far per API (summed over the versions the broker tags them with). */
  private static Map<String, Long> counts(MBeanServerConnection mbeans) throws Exception {
    Map<String, Long> out = new TreeMap<>();
    for (ObjectName name : mbeans.queryNames(new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,*"), null)) {
      out.merge(name.getKeyProperty("request"), (Long) mbeans.getAttribute(name, "Count"), Long::sum);
    }
    return out;
  }
}
