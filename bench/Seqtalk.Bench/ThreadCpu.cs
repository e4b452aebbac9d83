using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Seqtalk.Bench;

/// <summary>The calling thread's CPU time in nanoseconds (Linux clock_gettime(CLOCK_THREAD_CPUTIME_ID)), so that
/// sub-millisecond parts can be timed on a shared machine, where wall-clock time mostly measures the other
/// processes. Elsewhere it falls back to the wall clock.</summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out Timespec time);

    /// <summary>True when <see cref="NowNs"/> is thread CPU time rather than the wall clock.</summary>
    internal static bool IsCpuTime { get; } = OperatingSystem.IsLinux() && ClockGetTime(ClockThreadCpuTimeId, out _) == 0;

    /// <summary>Nanoseconds of this thread's CPU time (or of the wall clock, see <see cref="IsCpuTime"/>).</summary>
    internal static long NowNs()
    {
        if (IsCpuTime && ClockGetTime(ClockThreadCpuTimeId, out var t) == 0) return t.Seconds * 1_000_000_000 + t.Nanoseconds;
        return (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));
    }
}
