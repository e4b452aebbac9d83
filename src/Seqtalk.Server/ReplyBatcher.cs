using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Seqtalk.Decoding;

namespace Seqtalk.Server;

/// <summary>
/// Dynamic batching: concurrent requests wait in a bounded queue, and one background loop takes up to
/// <see cref="ServerOptions.MaxBatchSize"/> of them (waiting at most <see cref="ServerOptions.MaxBatchWaitMs"/>
/// for more after the first) and decodes them with one <see cref="ChatModel.ReplyBatch"/> call per reply
/// length. Greedy decoding of one row does not look at the other rows, so a reply never depends on what
/// it was batched with (the tests check this).
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
    public Task<string>? TryEnqueue(string question, int maxLength, CancellationToken cancellationToken)
    {
        var job = new Job(question, maxLength, cancellationToken);
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

        // ReplyBatch takes one set of options, so each reply length is one call.
        foreach (var group in live.GroupBy(j => j.MaxLength))
        {
            var jobs = group.ToList();
            try
            {
                var replies = _model.ReplyBatch(jobs.Select(j => j.Question).ToList(), new DecodeOptions { MaxLength = group.Key });
                _metrics.ObserveBatch(jobs.Count);
                for (int i = 0; i < jobs.Count; i++) jobs[i].Reply.TrySetResult(replies[i]);
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

    private sealed class Job(string question, int maxLength, CancellationToken cancellationToken)
    {
        public string Question { get; } = question;
        public int MaxLength { get; } = maxLength;
        public CancellationToken CancellationToken { get; } = cancellationToken;
        public TaskCompletionSource<string> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
