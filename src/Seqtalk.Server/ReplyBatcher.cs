using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Seqtalk.Decoding;

namespace Seqtalk.Server;

/// <summary>
/// Dynamic batching: concurrent requests wait in a bounded queue, and one background loop takes up to
/// <see cref="ServerOptions.MaxBatchSize"/> of them and decodes them. Questions that queued while the loop was busy
/// are decoded at once, all together; only when a question finds the loop idle does it wait up to
/// <see cref="ServerOptions.MaxBatchWaitMs"/> for more (0, the default: never). The loop decodes them with one call per set of equal decoding options (reply length,
/// strategy, seed…): <see cref="ChatModel.ReplyBatch(IReadOnlyList{string}, Seqtalk.Decoding.DecodeOptions?, Action{int, string}?)"/> for plain greedy requests, <see cref="ChatModel.ReplyDetailedBatch"/>
/// for beam search and sampling. No decoding strategy lets one row look at another, and sampling gives every
/// question its own generator, so a reply never depends on what it was batched with (the tests check this).
/// </summary>
internal sealed class ReplyBatcher : IAsyncDisposable
{
    private readonly ChatModel _model;
    private readonly ServerOptions _options;
    private readonly ServerMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Channel<Job> _queue;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;
    private TaskCompletionSource? _gate;
    private long _timedWaits;
    private volatile bool _idle;
    private readonly List<Job> _live = [];   // the loop's scratch: the batch less the requests that were cancelled

    public ReplyBatcher(ChatModel model, ServerOptions options, ServerMetrics metrics, ILogger<ReplyBatcher> logger)
    {
        _model = model;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _queue = Channel.CreateBounded<Job>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails instead of waiting: the caller answers 429
        });
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Questions waiting for the model.</summary>
    public int QueueLength => _queue.Reader.Count;

    /// <summary>True while the loop runs.</summary>
    public bool IsRunning => !_loop.IsCompleted && !_stopping.IsCancellationRequested;

    /// <summary>Queues a question. Returns null when the queue is full (the caller answers 429); otherwise a task
    /// for the reply that is cancelled if <paramref name="cancellationToken"/> fires before its batch starts.</summary>
    public Task<ServedReply>? TryEnqueue(string question, DecodeOptions options, CancellationToken cancellationToken)
    {
        var job = new Job(question, options, cancellationToken);
        if (!_queue.Writer.TryWrite(job)) return null;
        _metrics.SetQueueLength(_queue.Reader.Count);
        return job.Reply.Task;
    }

    /// <summary>Test hook: while a gate is set, the loop waits before taking the next batch, so tests can fill the
    /// queue or form a batch of a known size without timing.</summary>
    internal void CloseGate() => Volatile.Write(ref _gate, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    /// <summary>Batches that waited up to <see cref="ServerOptions.MaxBatchWaitMs"/> for more questions (tests).</summary>
    internal long TimedWaits => Interlocked.Read(ref _timedWaits);

    /// <summary>True while the loop waits for work with nothing queued (tests: the next question finds it idle).</summary>
    internal bool Idle => _idle;

    /// <summary>Test hook: lets the loop go on.</summary>
    internal void OpenGate() => Interlocked.Exchange(ref _gate, null)?.TrySetResult();

    private async Task RunAsync()
    {
        var stopping = _stopping.Token;
        var batch = new List<Job>(_options.MaxBatchSize);
        try
        {
            while (true)
            {
                if (Volatile.Read(ref _gate) is { } gate) await gate.Task.WaitAsync(stopping);
                // Questions already queued now arrived while the loop was busy (decoding, or held at the gate): they
                // have waited long enough, so their batch starts at once. Only a loop that sat idle waits for company.
                bool backlog = _queue.Reader.Count > 0;
                _idle = !backlog;
                if (!await _queue.Reader.WaitToReadAsync(stopping)) break;
                _idle = false;
                if (Volatile.Read(ref _gate) is not null) continue; // closed while we waited for work: wait at the gate again

                batch.Clear();
                await CollectAsync(batch, backlog, stopping);
                _metrics.SetQueueLength(_queue.Reader.Count);
                Decode(batch);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        finally
        {
            _queue.Writer.TryComplete();
            while (_queue.Reader.TryRead(out var job)) job.Reply.TrySetCanceled(stopping);
            foreach (var job in batch) job.Reply.TrySetCanceled(stopping);
        }
    }

    private async Task CollectAsync(List<Job> batch, bool backlog, CancellationToken stopping)
    {
        while (batch.Count < _options.MaxBatchSize && _queue.Reader.TryRead(out var job)) batch.Add(job);
        if (batch.Count >= _options.MaxBatchSize || _options.MaxBatchWaitMs == 0 || backlog) return;

        Interlocked.Increment(ref _timedWaits);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        wait.CancelAfter(_options.MaxBatchWaitMs);
        try
        {
            while (batch.Count < _options.MaxBatchSize && await _queue.Reader.WaitToReadAsync(wait.Token))
            {
                while (batch.Count < _options.MaxBatchSize && _queue.Reader.TryRead(out var job)) batch.Add(job);
            }
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            // the wait is over: decode what we have
        }
    }

    private void Decode(List<Job> batch)
    {
        // Requests whose client went away or timed out before their batch started are not decoded.
        _live.Clear();
        foreach (var job in batch)
        {
            if (job.CancellationToken.IsCancellationRequested) job.Reply.TrySetCanceled(job.CancellationToken);
            else _live.Add(job);
        }
        if (_live.Count == 0) return;

        // A library call takes one set of options, so each distinct set (records compare by value) is one call, in
        // the order each set first arrived. Under load nearly every request has the defaults: one call.
        var first = _live[0].Options;
        if (_live.TrueForAll(j => j.Options.Equals(first)))
        {
            DecodeGroup(first, _live);
            return;
        }
        var groups = new Dictionary<DecodeOptions, List<Job>>();
        var order = new List<DecodeOptions>();
        foreach (var job in _live)
        {
            if (!groups.TryGetValue(job.Options, out var jobs))
            {
                groups.Add(job.Options, jobs = []);
                order.Add(job.Options);
            }
            jobs.Add(job);
        }
        foreach (var options in order) DecodeGroup(options, groups[options]);
    }

    private void DecodeGroup(DecodeOptions options, List<Job> jobs)
    {
        try
        {
            var questions = new string[jobs.Count];
            for (int i = 0; i < questions.Length; i++) questions[i] = jobs[i].Question;
            if (options.IsPlainGreedy())
            {
                // The text is all this path returns; its token count is the tokenizer's count of it, which for greedy
                // replies without <unk> is the number of tokens generated (a fraction of a microsecond per reply).
                // Four or more rows are shared across the cores, each decoding a share of the questions (replies do not
                // depend on it): the one decode loop is the server's bottleneck under load, and HTTP work alone does not
                // fill the other cores. Each reply is handed to its request at the step its decoding ends, on the decoding
                // thread: it goes out while the rest of the batch decodes, and its HTTP work can fill a core whose share is done.
                var decode = jobs.Count >= 4 && options.Threads == 1 ? options with { Threads = Environment.ProcessorCount } : options;
                _model.ReplyBatch(questions, decode, (i, reply) => jobs[i].Reply.TrySetResult(new ServedReply(reply, _model.CountReplyTokens(reply), null)));
            }
            else
            {
                var results = _model.ReplyDetailedBatch(questions, options);
                for (int i = 0; i < jobs.Count; i++) jobs[i].Reply.TrySetResult(new ServedReply(results[i].Text, results[i].Tokens.Count, results[i].NBest));
            }
            _metrics.ObserveBatch(jobs.Count);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Decoding a batch of {Count} questions failed.", jobs.Count);
            foreach (var job in jobs) job.Reply.TrySetException(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        OpenGate();
        try { await _loop; }
        catch (OperationCanceledException) { }
        _stopping.Dispose();
    }

    private sealed class Job(string question, DecodeOptions options, CancellationToken cancellationToken)
    {
        public string Question { get; } = question;
        public DecodeOptions Options { get; } = options;
        public CancellationToken CancellationToken { get; } = cancellationToken;
        public TaskCompletionSource<ServedReply> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>A decoded reply: its text, its length in model tokens, and the candidates with scores (null for plain greedy decoding).</summary>
internal sealed record ServedReply(string Text, int Tokens, IReadOnlyList<ReplyCandidate>? Candidates);

internal static class DecodeOptionsExtensions
{
    /// <summary>Greedy decoding with no rule but the &lt;unk&gt; ban: the fast path, which gives no scores. (With &lt;unk&gt;
    /// allowed the reply text no longer tells its token count, so that goes the detailed way.)</summary>
    public static bool IsPlainGreedy(this DecodeOptions o) =>
        !o.AllowUnknown && o.Temperature == 0 && o.BeamSize == 1 && o.NBest == 1 && o.MinLength == 0 && o.NoRepeatNgramSize == 0 && o.RepetitionPenalty == DecodeOptions.DefaultRepetitionPenalty;
}
