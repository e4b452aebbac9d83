using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Seqtalk.Decoding;

namespace Seqtalk.Server;

/// <summary>
/// Dynamic batching: concurrent requests wait in a bounded queue, and one background loop takes them whenever a
/// thread is free to decode and fewer than <see cref="ServerOptions.MaxBatchSize"/> questions are decoding (plain
/// greedy batches decode in shares on pool threads, and the loop does not wait for them). Questions that queued while
/// the threads were busy are decoded at once, all together; only when a question finds the loop idle does it wait up to
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
    // Shares of greedy batches still decoding on other threads, and their questions (under _sync); _shareEnded, when
    // set, is completed when one of them ends (the loop waits on it for a free thread or for room under MaxBatchSize).
    private readonly Lock _sync = new();
    private readonly int _threads;
    private int _busyShares, _rowsInFlight;
    private TaskCompletionSource? _shareEnded;
    private volatile bool _waitingForRoom;
    private ManualResetEventSlim? _heldShares;   // test hook: while set and not signalled, shares wait before decoding

    public ReplyBatcher(ChatModel model, ServerOptions options, ServerMetrics metrics, ILogger<ReplyBatcher> logger)
    {
        _model = model;
        _options = options;
        _metrics = metrics;
        _logger = logger;
        _threads = Math.Max(1, options.DecodeThreads ?? Environment.ProcessorCount);
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

    /// <summary>Test hook: shares that start from now on wait before decoding until <see cref="ReleaseShares"/>, so tests
    /// can see what starts while others decode.</summary>
    internal void HoldShares() => Volatile.Write(ref _heldShares, new ManualResetEventSlim(false));

    /// <summary>Test hook: lets held shares decode.</summary>
    internal void ReleaseShares() => Interlocked.Exchange(ref _heldShares, null)?.Set();

    /// <summary>Shares of greedy batches decoding now (tests).</summary>
    internal int SharesDecoding
    {
        get { lock (_sync) return _busyShares; }
    }

    /// <summary>True while the loop waits for a share to end: every thread is decoding, or MaxBatchSize questions are (tests).</summary>
    internal bool WaitingForRoom => _waitingForRoom;

    private async Task RunAsync()
    {
        var stopping = _stopping.Token;
        var batch = new List<Job>(_options.MaxBatchSize);
        try
        {
            while (true)
            {
                if (Volatile.Read(ref _gate) is { } gate) await gate.Task.WaitAsync(stopping);
                int room = await WaitForRoomAsync(stopping);
                // Questions already queued now arrived while the loop was busy (decoding, or held at the gate): they
                // have waited long enough, so their batch starts at once. Only a loop that sat idle waits for company.
                bool backlog = _queue.Reader.Count > 0;
                _idle = !backlog;
                if (!await _queue.Reader.WaitToReadAsync(stopping)) break;
                _idle = false;
                if (Volatile.Read(ref _gate) is not null) continue; // closed while we waited for work: wait at the gate again

                batch.Clear();
                await CollectAsync(batch, room, backlog, stopping);
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

    /// <summary>Waits until a thread is free to decode and fewer than <see cref="ServerOptions.MaxBatchSize"/> questions
    /// are decoding; returns how many more may start.</summary>
    private async Task<int> WaitForRoomAsync(CancellationToken stopping)
    {
        while (true)
        {
            Task ended;
            lock (_sync)
            {
                _waitingForRoom = !(_busyShares < _threads && _rowsInFlight < _options.MaxBatchSize);
                if (!_waitingForRoom) return _options.MaxBatchSize - _rowsInFlight;
                ended = NextShareEnd();
            }
            await ended.WaitAsync(stopping);
        }
    }

    /// <summary>A task completed when the next share ends (call under _sync).</summary>
    private Task NextShareEnd() => (_shareEnded ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    private async Task CollectAsync(List<Job> batch, int room, bool backlog, CancellationToken stopping)
    {
        while (batch.Count < room && _queue.Reader.TryRead(out var job)) batch.Add(job);
        if (batch.Count >= room || _options.MaxBatchWaitMs == 0 || backlog) return;

        Interlocked.Increment(ref _timedWaits);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        wait.CancelAfter(_options.MaxBatchWaitMs);
        try
        {
            while (batch.Count < room && await _queue.Reader.WaitToReadAsync(wait.Token))
            {
                while (batch.Count < room && _queue.Reader.TryRead(out var job)) batch.Add(job);
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
        _metrics.ObserveBatch(jobs.Count);
        if (options.IsPlainGreedy())
        {
            DecodeGreedy(options, jobs);
            return;
        }
        try
        {
            var questions = new string[jobs.Count];
            for (int i = 0; i < questions.Length; i++) questions[i] = jobs[i].Question;
            var results = _model.ReplyDetailedBatch(questions, options);
            for (int i = 0; i < jobs.Count; i++) jobs[i].Reply.TrySetResult(new ServedReply(results[i].Text, results[i].Tokens.Count, results[i].NBest));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Decoding a batch of {Count} questions failed.", jobs.Count);
            foreach (var job in jobs) job.Reply.TrySetException(e);
        }
    }

    /// <summary>Plain greedy questions: cut, longest question first, into one share per free thread (four or more
    /// questions, at least two a share), each decoded by one <see cref="ChatModel.ReplyBatch(IReadOnlyList{string}, Seqtalk.Decoding.DecodeOptions?, Action{int, string}?)"/>
    /// call on its own thread. The loop does not wait for the shares: as soon as one ends, its thread takes the questions
    /// that queued meanwhile (up to <see cref="ServerOptions.MaxBatchSize"/> decoding at once), where a batch cut across
    /// the cores once waited for its slowest share while the other core had nothing to decode. A lone share runs on the
    /// loop's own thread when nothing could start beside it (one core, or no room left, as with MaxBatchSize 1): the
    /// loop would only wait for it. Replies do not depend on the cut (a row never depends on its batch-mates).</summary>
    private void DecodeGreedy(DecodeOptions options, List<Job> jobs)
    {
        int count = jobs.Count, parts;
        bool inline;
        lock (_sync)
        {
            parts = count >= MinRowsToShare ? Math.Clamp(count / 2, 1, Math.Max(1, _threads - _busyShares)) : 1;
            _busyShares += parts;
            _rowsInFlight += count;
            // On the loop's thread only when it is all that decodes and nothing could start beside it; otherwise the
            // loop must be free to refill whichever thread ends first.
            inline = _busyShares == 1 && (_threads == 1 || _rowsInFlight >= _options.MaxBatchSize);
        }
        // Longest question first (OrderBy is stable and computes each key once): a share's rows then leave the encoder at
        // nearly the same step.
        Job[] sorted = parts > 1 ? [.. jobs.OrderByDescending(j => _model.CountQuestionTokens(j.Question))] : [.. jobs];
        for (int p = 0; p < parts; p++)
        {
            var share = sorted[(int)((long)count * p / parts)..(int)((long)count * (p + 1) / parts)];
            if (inline && p == parts - 1) DecodeShare(options, share);
            else ThreadPool.UnsafeQueueUserWorkItem(s => DecodeShare(options, s), share, preferLocal: false);
        }
    }

    /// <summary>Fewest questions a greedy batch needs to be cut into shares.</summary>
    private const int MinRowsToShare = 4;

    private void DecodeShare(DecodeOptions options, Job[] share)
    {
        try
        {
            Volatile.Read(ref _heldShares)?.Wait();
            var questions = new string[share.Length];
            for (int i = 0; i < questions.Length; i++) questions[i] = share[i].Question;
            // The text is all this path returns; its token count is the tokenizer's count of it, which for greedy
            // replies without <unk> is the number of tokens generated (a fraction of a microsecond per reply). Each
            // reply is handed to its request at the step its decoding ends, on this thread: it goes out while the rest
            // of the share decodes.
            _model.ReplyBatch(questions, options, (i, reply) => share[i].Reply.TrySetResult(new ServedReply(reply, _model.CountReplyTokens(reply), null)));
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Decoding a batch of {Count} questions failed.", share.Length);
            foreach (var job in share) job.Reply.TrySetException(e);
        }
        finally
        {
            lock (_sync)
            {
                _busyShares--;
                _rowsInFlight -= share.Length;
                _shareEnded?.TrySetResult();
                _shareEnded = null;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        OpenGate();
        try { await _loop; }
        catch (OperationCanceledException) { }
        // Shares still decoding on other threads finish and answer their requests.
        while (true)
        {
            Task ended;
            lock (_sync)
            {
                if (_busyShares == 0) break;
                ended = NextShareEnd();
            }
            await ended;
        }
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
