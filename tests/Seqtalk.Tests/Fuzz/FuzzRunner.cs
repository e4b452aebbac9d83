using System.Diagnostics;
using System.Globalization;
using System.Text;
using CsCheck;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Fuzz;

/// <summary>
/// Runs a property over generated inputs, reproducibly. Input i of a target is generated from a CsCheck
/// <see cref="PCG"/> seeded from (base seed, target name, i), so a run is the same on every machine;
/// CsCheck's own <c>Sample</c> would draw fresh random seeds after the first input. On a failure the
/// runner prints the target, the input's seed string and the input itself, writes the input to a file,
/// then lets CsCheck shrink from that seed for a bounded number of tries and prints the smallest failing
/// input it found. See docs/testing.md.
/// </summary>
/// <remarks>
/// Environment variables:
/// <list type="bullet">
/// <item><c>SEQTALK_FUZZ_SEED</c>: a whole number mixed into every target's seed (default 0, the CI inputs).</item>
/// <item><c>SEQTALK_FUZZ_ITERATIONS</c>: inputs per target instead of each target's default.</item>
/// <item><c>SEQTALK_FUZZ_REPLAY</c>: <c>target=seed</c>, as printed on failure: runs only that input of that target.</item>
/// </list>
/// </remarks>
internal static class FuzzRunner
{
    public const string SeedVariable = "SEQTALK_FUZZ_SEED";
    public const string IterationsVariable = "SEQTALK_FUZZ_ITERATIONS";
    public const string ReplayVariable = "SEQTALK_FUZZ_REPLAY";

    /// <summary>One input taking longer than this is reported as a hang, with its seed.</summary>
    public static readonly TimeSpan HangTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Runs <paramref name="property"/> on <paramref name="iterations"/> inputs of <paramref name="gen"/>
    /// and returns how many it ran. Any exception from the property fails the test with the seed and the input.</summary>
    public static int Run<T>(ITestOutputHelper output, string target, Gen<T> gen, Action<T> property, int iterations, Func<T, string> print)
    {
        var seeds = Seeds(target, iterations, out string how);
        var stopwatch = Stopwatch.StartNew();
        int done = 0;
        string current = "";
        long currentStart = 0;
        var worker = Task.Factory.StartNew(() =>
        {
            foreach (string seed in seeds)
            {
                Volatile.Write(ref current, seed);
                Volatile.Write(ref currentStart, stopwatch.ElapsedTicks);
                T value = gen.Generate(PCG.Parse(seed), null, out _);
                try
                {
                    property(value);
                }
                catch (Exception ex)
                {
                    throw new FuzzFailureException(Report(target, seed, value, print, ex, Shrink(gen, property, seed, print)), ex);
                }
                done++;
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        while (!((IAsyncResult)worker).AsyncWaitHandle.WaitOne(200))
        {
            long started = Volatile.Read(ref currentStart);
            var elapsed = TimeSpan.FromSeconds((stopwatch.ElapsedTicks - started) / (double)Stopwatch.Frequency);
            if (elapsed > HangTimeout)
            {
                string seed = Volatile.Read(ref current);
                string message = $"Fuzz target '{target}': the input with seed {seed} has run for {elapsed.TotalSeconds:F0} s (hang?). "
                    + $"Reproduce with {ReplayVariable}={target}={seed}.";
                Assert.Fail(message);
            }
        }
        worker.GetAwaiter().GetResult();
        output.WriteLine($"fuzz {target}: {done} inputs in {stopwatch.Elapsed.TotalSeconds:F1} s ({how})");
        return done;
    }

    /// <summary>The seed strings to run: one per input, from the base seed, or the one replayed.</summary>
    private static List<string> Seeds(string target, int iterations, out string how)
    {
        if (Environment.GetEnvironmentVariable(ReplayVariable) is { Length: > 0 } replay)
        {
            int eq = replay.LastIndexOf('=');
            string name = eq < 0 ? "" : replay[..eq];
            how = $"replay of {replay}";
            return name == target ? [replay[(eq + 1)..]] : [];
        }

        ulong baseSeed = 0;
        if (Environment.GetEnvironmentVariable(SeedVariable) is { Length: > 0 } text)
        {
            baseSeed = ulong.Parse(text, CultureInfo.InvariantCulture);
        }
        if (Environment.GetEnvironmentVariable(IterationsVariable) is { Length: > 0 } count)
        {
            iterations = int.Parse(count, CultureInfo.InvariantCulture);
        }
        how = $"{SeedVariable}={baseSeed}";

        ulong targetSeed = SplitMix(baseSeed ^ Fnv(target));
        var seeds = new List<string>(iterations);
        for (int i = 0; i < iterations; i++)
        {
            seeds.Add(new PCG(1, SplitMix(targetSeed + (ulong)i)).ToString());
        }
        return seeds;
    }

    /// <summary>Lets CsCheck shrink from the failing seed: it replays that seed first, then keeps smaller failing inputs.</summary>
    private static string Shrink<T>(Gen<T> gen, Action<T> property, string seed, Func<T, string> print)
    {
        try
        {
            gen.Sample(property, seed: seed, iter: 300, threads: 1, print: print);
            return "CsCheck could not reproduce the failure from the seed (is the property deterministic?).";
        }
        catch (Exception ex)
        {
            return "CsCheck shrinking: " + ex.Message;
        }
    }

    private static string Report<T>(string target, string seed, T value, Func<T, string> print, Exception ex, string shrunk)
    {
        string file = Path.Combine(Path.GetTempPath(), $"seqtalk-fuzz-{target}-{seed}.txt");
        string shown = print(value);
        try { File.WriteAllText(file, shown); } catch (IOException) { file = "(could not be written)"; }
        return new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"Fuzz target '{target}' failed: {ex.GetType().Name}: {ex.Message}")
            .AppendLine(CultureInfo.InvariantCulture, $"Seed {seed}; reproduce with {ReplayVariable}={target}={seed} (docs/testing.md).")
            .AppendLine(CultureInfo.InvariantCulture, $"Input (also in {file}): {Clip(shown, 2000)}")
            .AppendLine(shrunk)
            .ToString();
    }

    private static string Clip(string text, int max) => text.Length <= max ? text : text[..max] + $"… ({text.Length} characters)";

    private static ulong Fnv(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }
        return hash;
    }

    private static ulong SplitMix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    /// <summary>Shows bytes as text: printable ASCII as is, everything else as \xNN (so the input can be rebuilt exactly).</summary>
    public static string ShowBytes(byte[] bytes)
    {
        var sb = new StringBuilder().Append(CultureInfo.InvariantCulture, $"[{bytes.Length} bytes] ");
        foreach (byte b in bytes)
        {
            if (b is >= 0x20 and < 0x7F && b != (byte)'\\') sb.Append((char)b);
            else sb.Append(CultureInfo.InvariantCulture, $"\\x{b:X2}");
        }
        return sb.ToString();
    }

    /// <summary>Shows a string with every character outside printable ASCII as \uXXXX.</summary>
    public static string ShowText(string text)
    {
        var sb = new StringBuilder().Append(CultureInfo.InvariantCulture, $"[{text.Length} chars] \"");
        foreach (char c in text)
        {
            if (c is >= ' ' and < '\x7F' && c != '\\') sb.Append(c);
            else sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
        }
        return sb.Append('"').ToString();
    }
}

/// <summary>A property failed on a generated input; the message holds the seed and the input.</summary>
public sealed class FuzzFailureException(string message, Exception inner) : Exception(message, inner);
