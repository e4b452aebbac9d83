using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Seqtalk.Decoding;

namespace Seqtalk.Server;

/// <summary>
/// Dynamic batching: concurrent requests wait in a bounded queue, and one background loop takes up to
/// <see cref="ServerOptions.MaxBatchSize"/> of them (waiting at most <see cref="ServerOptions.MaxBatchWaitMs"/>
/// for more after the first) and decodes them with one call per set of equal decoding options (reply length,
/// strategy, seed…): <see cref="ChatModel.ReplyBatch"/> for plain greedy requests, <see cref="ChatModel.ReplyDetailedBatch"/>
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
                if (!await _queue.Reader.WaitToReadAsync(stopping)) break;
                if (Volatile.Read(ref _gate) is not null) continue; // closed while we waited for work: wait at the gate again

                batch.Clear();
                await CollectAsync(batch, stopping);
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

    private async Task CollectAsync(List<Job> batch, CancellationToken stopping)
    {
        while (batch.Count < _options.MaxBatchSize && _queue.Reader.TryRead(out var job)) batch.Add(job);
        if (batch.Count >= _options.MaxBatchSize || _options.MaxBatchWaitMs == 0) return;

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
        var live = new List<Job>(batch.Count);
        foreach (var job in batch)
        {
            if (job.CancellationToken.IsCancellationRequested) job.Reply.TrySetCanceled(job.CancellationToken);
            else live.Add(job);
        }

        // A library call takes one set of options, so each distinct set (records compare by value) is one call.
        foreach (var group in live.GroupBy(j => j.Options))
        {
            var jobs = group.ToList();
            try
            {
                var questions = jobs.Select(j => j.Question).ToList();
                if (group.Key.IsPlainGreedy())
                {
                    var replies = _model.ReplyBatch(questions, group.Key);
                    for (int i = 0; i < jobs.Count; i++) jobs[i].Reply.TrySetResult(new ServedReply(replies[i], _model.CountReplyTokens(replies[i]), null));
                }
                else
                {
                    var results = _model.ReplyDetailedBatch(questions, group.Key);
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
