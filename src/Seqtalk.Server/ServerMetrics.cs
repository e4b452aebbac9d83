using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Seqtalk.Server;

/// <summary>
/// The server's counters, rendered as Prometheus text exposition format (version 0.0.4) at <c>/metrics</c>:
/// requests by route and status, a request latency histogram by route, micro-batch sizes, reply tokens
/// and the queue length. Lock-free counters; the histogram buckets are fixed.
/// </summary>
internal sealed class ServerMetrics
{
    private static readonly double[] s_latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly double[] s_batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];

    private readonly ConcurrentDictionary<(string Route, int Status), Counter> _requests = new();
    private readonly ConcurrentDictionary<string, Histogram> _latency = new();
    private readonly Histogram _batchSizes = new(s_batchBuckets);
    private long _tokens;
    private long _queueLength;

    public void ObserveRequest(string route, int status, double seconds)
    {
        _requests.GetOrAdd((route, status), _ => new Counter()).Increment();
        _latency.GetOrAdd(route, _ => new Histogram(s_latencyBuckets)).Observe(seconds);
    }

    public void ObserveBatch(int size) => _batchSizes.Observe(size);

    public void AddTokens(int tokens) => Interlocked.Add(ref _tokens, tokens);

    public void SetQueueLength(int length) => Interlocked.Exchange(ref _queueLength, length);

    public string Render()
    {
        var text = new StringBuilder();
        text.Append("# HELP seqtalk_http_requests_total HTTP requests by route and status (499: the client went away).\n");
        text.Append("# TYPE seqtalk_http_requests_total counter\n");
        foreach (var ((route, status), counter) in _requests.OrderBy(x => x.Key.Route, StringComparer.Ordinal).ThenBy(x => x.Key.Status))
            text.Append(CultureInfo.InvariantCulture, $"seqtalk_http_requests_total{{route=\"{Escape(route)}\",status=\"{status}\"}} {counter.Value}\n");

        text.Append("# HELP seqtalk_http_request_duration_seconds Time from request start to the end of the response.\n");
        text.Append("# TYPE seqtalk_http_request_duration_seconds histogram\n");
        foreach (var (route, histogram) in _latency.OrderBy(x => x.Key, StringComparer.Ordinal))
            histogram.Render(text, "seqtalk_http_request_duration_seconds", $"route=\"{Escape(route)}\",");

        text.Append("# HELP seqtalk_batch_size Questions each batch took when it started (decoded in shares on the free threads).\n");
        text.Append("# TYPE seqtalk_batch_size histogram\n");
        _batchSizes.Render(text, "seqtalk_batch_size", "");

        text.Append("# HELP seqtalk_generated_tokens_total Reply tokens sent (word pieces of the reply text).\n");
        text.Append("# TYPE seqtalk_generated_tokens_total counter\n");
        text.Append(CultureInfo.InvariantCulture, $"seqtalk_generated_tokens_total {Interlocked.Read(ref _tokens)}\n");

        text.Append("# HELP seqtalk_queue_length Questions waiting for the model.\n");
        text.Append("# TYPE seqtalk_queue_length gauge\n");
        text.Append(CultureInfo.InvariantCulture, $"seqtalk_queue_length {Interlocked.Read(ref _queueLength)}\n");
        return text.ToString();
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private sealed class Counter
    {
        private long _value;
        public long Value => Interlocked.Read(ref _value);
        public void Increment() => Interlocked.Increment(ref _value);
    }

    private sealed class Histogram(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length + 1]; // the last one is +Inf
        private long _count;
        private long _sumMicros; // the sum in millionths, so it can be added without a lock

        public void Observe(double value)
        {
            int i = 0;
            while (i < bounds.Length && value > bounds[i]) i++;
            Interlocked.Increment(ref _counts[i]);
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _sumMicros, (long)Math.Round(value * 1e6));
        }

        public void Render(StringBuilder text, string name, string labels)
        {
            long cumulative = 0;
            for (int i = 0; i < bounds.Length; i++)
            {
                cumulative += Interlocked.Read(ref _counts[i]);
                text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels}le=\"{bounds[i]}\"}} {cumulative}\n");
            }
            cumulative += Interlocked.Read(ref _counts[^1]);
            text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}\n");
            string trimmed = labels.TrimEnd(',');
            string braces = trimmed.Length == 0 ? "" : "{" + trimmed + "}";
            text.Append(CultureInfo.InvariantCulture, $"{name}_sum{braces} {Interlocked.Read(ref _sumMicros) / 1e6}\n");
            text.Append(CultureInfo.InvariantCulture, $"{name}_count{braces} {Interlocked.Read(ref _count)}\n");
        }
    }
}
