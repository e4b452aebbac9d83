// WorkerPool: a few persistent threads that run the items of one parallel section with the calling thread.
//
// Training runs hundreds of small parallel sections per batch (one per LSTM time step, forward and backward),
// so a section must cost microseconds, not the tens of microseconds of Parallel.For. The workers park on an
// event that spins before it blocks; the caller runs items too, then spins (yielding, never sleeping) until the
// last item is done. Items are taken in order from a shared counter, so which thread runs an item varies, but
// an item is always the same computation: callers cut their work into items fixed by the problem's shape, never
// by the thread count, and give each item its own outputs, so results do not depend on the thread count.
// The workers hold only the pool's inner state: when the pool becomes unreachable, its finalizer stops them.

namespace Seqtalk.Nn;

/// <summary>Runs the items of a parallel section on the calling thread and <c>threads − 1</c> persistent workers.</summary>
internal sealed class WorkerPool
{
    /// <summary>Spins of a parked worker before it blocks (ManualResetEventSlim's cap): a section usually follows
    /// the last one within microseconds, so a worker should not fall asleep between time steps.</summary>
    private const int WorkerSpins = 2047;

    private readonly State _state;
    private readonly Thread[] _workers;

    /// <summary>A pool of <paramref name="threads"/> threads in all: the caller and threads − 1 workers.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is below 1.</exception>
    public WorkerPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _state = new State(threads - 1);
        _workers = new Thread[threads - 1];
        for (int w = 0; w < _workers.Length; w++)
        {
            var state = _state;
            int index = w;
            _workers[w] = new Thread(() => state.WorkerLoop(index)) { IsBackground = true, Name = $"Seqtalk worker {w + 1}" };
            _workers[w].Start();
        }
    }

    /// <summary>Threads that run a section: the caller and the workers.</summary>
    public int Threads { get; }

    /// <summary>Runs body(0) … body(items − 1), each exactly once, on the caller and the workers; returns when all are
    /// done. The first exception an item throws is rethrown here. Not reentrant: one section at a time.</summary>
    public void Run(int items, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (items <= 0) return;
        if (items == 1 || _workers.Length == 0)
        {
            for (int i = 0; i < items; i++) body(i);
            return;
        }
        _state.Run(items, body, Math.Min(items - 1, _workers.Length));
    }

    // The workers hold only _state, so an unreachable pool is finalized and stops them (no Dispose to forget).
    ~WorkerPool() => _state.Stop();

    private sealed class State(int workers)
    {
        private readonly ManualResetEventSlim[] _go = Enumerable.Range(0, workers).Select(_ => new ManualResetEventSlim(false, WorkerSpins)).ToArray();
        private Action<int>? _body;
        private int _items, _next, _active;
        private volatile bool _stopped;
        private Exception? _error;

        public void Run(int items, Action<int> body, int workers)
        {
            ObjectDisposedException.ThrowIf(_stopped, typeof(WorkerPool));
            _body = body;
            _items = items;
            _error = null;
            Volatile.Write(ref _next, 0);
            Volatile.Write(ref _active, workers + 1);
            for (int w = 0; w < workers; w++) _go[w].Set();
            Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref _active) != 0) spin.SpinOnce(sleep1Threshold: -1);
            _body = null;
            if (_error is { } error) throw new AggregateException(error);
        }

        // Takes items in order until none is left; the last thread out brings _active to 0.
        private void Work()
        {
            try
            {
                var body = _body!;
                int i;
                while ((i = Interlocked.Increment(ref _next) - 1) < _items) body(i);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
                Volatile.Write(ref _next, _items);   // the others stop taking items
            }
            finally
            {
                Interlocked.Decrement(ref _active);
            }
        }

        public void WorkerLoop(int w)
        {
            var go = _go[w];
            while (true)
            {
                go.Wait();
                go.Reset();   // the next Set comes only after this round's Work has finished
                if (_stopped) return;
                Work();
            }
        }

        public void Stop()
        {
            if (_stopped) return;
            _stopped = true;
            foreach (var go in _go) go.Set();
        }
    }
}
