using System.Diagnostics;
using System.Numerics.Tensors;
using Seqtalk.Data;
using Seqtalk.Decoding;
using Seqtalk.Text;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Bench;

/// <summary>`reply-profile MODEL_DIR DATA`: where the time of a greedy reply goes, on the validation questions of a
/// trained model: tokenizing, decoding and detokenizing one reply; batch-1 greedy with the fp32 projection against
/// the int8 screen (and that they give the same replies); ReplyBatch on 1 and 2 threads; batched greedy with the
/// logits block against the fused projection + arg-max (same replies); and the kernels alone. Medians and
/// alternation, so a loaded machine hurts both sides alike.</summary>
internal static class ReplyProfile
{
    public static int Run(string[] args)
    {
        if (args.Length < 2 || !Directory.Exists(args[0]) || !File.Exists(args[1]))
        {
            Console.Error.WriteLine("usage: reply-profile MODEL_DIR DATA_FILE (the model trained on DATA_FILE, e.g. seqtalk train --seed 1)");
            return 2;
        }
        var chat = ChatModel.Load(args[0]);
        var pairs = PairReader.ReadAll(args[1], null, out _);
        var questions = chat.ValidationPairs(pairs).Select(p => p.Question).Take(200).ToList();
        var net = chat.Network;
        int h = net.Config.HiddenDim, vt = net.Config.TargetVocabSize;
        Console.WriteLine($"H={h} Vt={vt} Vs={net.Config.SourceVocabSize}");
        var decode = new DecodeOptions { MaxLength = 22 };
        for (int rep = 0; rep < 3; rep++)
        {
            foreach (var q in questions) chat.Reply(q, decode);
            double tTok = 0, tDec = 0, tStr = 0;
            long steps = 0;
            var session = new InferenceSession(net, 128);
            var all = new List<double>();
            foreach (var q in questions)
            {
                long s0 = Stopwatch.GetTimestamp();
                var ids = chat.SourceTokenizer.EncodeToIds(q).ToArray();
                long s1 = Stopwatch.GetTimestamp();
                var r = session.GreedyDecode([ids], 22, true);
                long s2 = Stopwatch.GetTimestamp();
                string text = chat.TargetTokenizer.Decode(r[0]);
                long s3 = Stopwatch.GetTimestamp();
                steps += r[0].Length + 1;
                tTok += s1 - s0; tDec += s2 - s1; tStr += s3 - s2;
                long a0 = Stopwatch.GetTimestamp();
                chat.Reply(q, decode);
                all.Add(Stopwatch.GetElapsedTime(a0).TotalMilliseconds);
            }
            all.Sort();
            double f = 1e6 / Stopwatch.Frequency / questions.Count;
            Console.WriteLine($"per reply µs: tokenize {tTok * f:F1}  greedy {tDec * f:F1}  detokenize {tStr * f:F1}; steps/reply {(double)steps / questions.Count:F2}; Reply median {all[all.Count / 2] * 1000:F1} µs");
        }
        var srcs = questions.Select(q => chat.SourceTokenizer.EncodeToIds(q).ToArray()).ToList();
        var exact = new InferenceSession(net, 128) { UseScreen = false };
        var fast = new InferenceSession(net, 128);
        for (int rep = 0; rep < 5; rep++)
        {
            var te = new List<double>(); var tf = new List<double>(); int diff = 0;
            foreach (var src in srcs)
            {
                long a = Stopwatch.GetTimestamp();
                var re = exact.GreedyDecode([src], 22, true);
                long b2 = Stopwatch.GetTimestamp();
                var rf = fast.GreedyDecode([src], 22, true);
                long c = Stopwatch.GetTimestamp();
                te.Add(b2 - a); tf.Add(c - b2);
                if (!re[0].SequenceEqual(rf[0])) diff++;
            }
            double f = 1e6 / Stopwatch.Frequency;
            te.Sort(); tf.Sort();
            Console.WriteLine($"greedy per reply median µs: exact {te[te.Count / 2] * f:F1}  screen {tf[tf.Count / 2] * f:F1}; differing replies {diff}; fp32 logits per screened row {(double)fast.ScreenedLogits / fast.ScreenedRows:F2}");
        }
        var allQ = chat.ValidationPairs(pairs).Select(p => p.Question).ToList();
        var baseline = chat.ReplyBatch(allQ, decode);
        for (int rep = 0; rep < 3; rep++)
        {
            foreach (int th in new[] { 1, 2 })
            {
                var d2 = decode with { Threads = th };
                var times = new List<double>();
                for (int k = 0; k < 3; k++)
                {
                    long a = Stopwatch.GetTimestamp();
                    var got = chat.ReplyBatch(allQ, d2);
                    times.Add(Stopwatch.GetElapsedTime(a).TotalSeconds);
                    if (!got.SequenceEqual(baseline)) Console.WriteLine("MISMATCH");
                }
                times.Sort();
                Console.WriteLine($"reply_batch threads {th}: {allQ.Count / times[1]:F0} replies/s ({times[1] * 1e3:F1} ms)");
            }
        }
        var allSrc = allQ.Select(q => chat.SourceTokenizer.EncodeToIds(q).ToArray()).ToList();
        var unfused = new InferenceSession(net, 128) { UseFusedArgMax = false };
        var fused = new InferenceSession(net, 128);
        for (int rep = 0; rep < 5; rep++)
        {
            long a = Stopwatch.GetTimestamp();
            var ru = unfused.GreedyDecode(allSrc, 22, true);
            long b2 = Stopwatch.GetTimestamp();
            var rf = fused.GreedyDecode(allSrc, 22, true);
            long c = Stopwatch.GetTimestamp();
            int diff = ru.Zip(rf).Count(t => !t.First.SequenceEqual(t.Second));
            Console.WriteLine($"batch greedy: unfused {(b2 - a) * 1e3 / Stopwatch.Frequency:F1} ms, fused {(c - b2) * 1e3 / Stopwatch.Frequency:F1} ms; differing {diff}");
        }
        // Kernel pieces
        var p = net.Parameters;
        var lay = net.Layout;
        var w = p.AsSpan(lay.OutputWeight.Offset, lay.OutputWeight.Length).ToArray();
        var b = p.AsSpan(lay[Seqtalk.Nn.ParameterLayout.Names.OutputBias].Offset, vt).ToArray();
        var x = new float[3 * h];
        var rnd = new Random(1);
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rnd.NextDouble() * 2 - 1);
        var y = new float[3 * vt];
        var wih = new float[200 * 50];
        var pre = new float[3 * 200];
        for (int rep = 0; rep < 3; rep++)
        {
            int n = 2000;
            long t0 = Stopwatch.GetTimestamp();
            for (int k = 0; k < n; k++) { K.MatMulForward(x.AsSpan(0, h), w, b, y.AsSpan(0, vt), 1, h, vt, 0, 1); }
            long t1 = Stopwatch.GetTimestamp();
            for (int k = 0; k < n; k++) TensorPrimitives.IndexOfMax(y.AsSpan(0, vt));
            var scr = GreedyScreen.For(net);
            var ap = new float[scr.ApproxLength]; var cand = new int[vt]; var vals = new float[vt];
            long u0 = Stopwatch.GetTimestamp();
            for (int k = 0; k < n; k++) scr.ArgMax(x.AsSpan(0, h), w, b, 1, ap, cand, vals, out _, out _);
            long u1 = Stopwatch.GetTimestamp();
            for (int k = 0; k < n; k++) scr.Approximate(x.AsSpan(0, h), ap);
            long u2 = Stopwatch.GetTimestamp();
            Console.WriteLine($"µs: screen ArgMax {(u1 - u0) * 1e6 / Stopwatch.Frequency / n:F2}; Approximate only {(u2 - u1) * 1e6 / Stopwatch.Frequency / n:F2}");
            long t2 = Stopwatch.GetTimestamp();
            for (int k = 0; k < n; k++) { K.MatMulForward(x.AsSpan(0, 50), wih, default, pre.AsSpan(0, 200), 1, 50, 200, 0, 1); }
            long t3 = Stopwatch.GetTimestamp();
            double f = 1e6 / Stopwatch.Frequency / n;
            Console.WriteLine($"µs: projection 1 row {(t1 - t0) * f:F1}; IndexOfMax {(t2 - t1) * f:F2}; one 50->200 matvec {(t3 - t2) * f:F2}");
        }
        return 0;
    }
}
