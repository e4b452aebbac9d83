// Kernels.Optimizers: parameter updates over the flat parameter buffer, and the squared norm used by
// gradient clipping. Each update is one pass over flat spans (p, g and the optimizer state share the
// parameter layout), vectorised with Vector<float>, with a scalar twin below.
//
// RMSprop (Keras): ms = ρ·ms + (1−ρ)·g²;  p −= lr·g / sqrt(ms + ε)
// Adam (PyTorch/Keras): m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; p −= lr·m̂ / (sqrt(v̂) + ε),
//   m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t), t 1-based.
// SGD with momentum (PyTorch): buf = μ·buf + g;  p −= lr·buf

using System.Diagnostics;
using System.Numerics;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>Keras RMSprop step: ms = rho·ms + (1−rho)·g²; p −= lr·g / sqrt(ms + eps).</summary>
    /// <remarks>Where a whole vector of g is +0 (the embedding rows a batch does not use: most of them), the step is
    /// ms = rho·ms and p unchanged, the bits of the formula (rho·ms + (+0) is rho·ms for ms ≥ 0, p − (+0) is p), so
    /// p is neither read nor written there: three streams instead of five.</remarks>
    public static void RmsPropUpdate(Span<float> p, ReadOnlySpan<float> g, Span<float> ms, float lr, float rho, float eps)
    {
        Debug.Assert(g.Length == p.Length && ms.Length == p.Length);
        int i = 0;
        float oneMinusRho = 1f - rho;
        if (Vector.IsHardwareAccelerated)
        {
            int n = Vector<float>.Count;
            var vRho = new Vector<float>(rho); var vOmr = new Vector<float>(oneMinusRho);
            var vLr = new Vector<float>(lr); var vEps = new Vector<float>(eps);
            for (; i <= p.Length - n; i += n)
            {
                var vg = new Vector<float>(g[i..]);
                if (Vector.EqualsAll(vg.As<float, int>(), Vector<int>.Zero))
                {
                    (vRho * new Vector<float>(ms[i..])).CopyTo(ms[i..]);
                    continue;
                }
                var vms = vRho * new Vector<float>(ms[i..]) + vOmr * (vg * vg);
                vms.CopyTo(ms[i..]);
                (new Vector<float>(p[i..]) - vLr * vg / Vector.SquareRoot(vms + vEps)).CopyTo(p[i..]);
            }
        }
        for (; i < p.Length; i++)
        {
            float m = rho * ms[i] + oneMinusRho * (g[i] * g[i]);
            ms[i] = m;
            p[i] -= lr * g[i] / MathF.Sqrt(m + eps);
        }
    }

    /// <summary>Adam step (PyTorch/Keras form, bias-corrected; <paramref name="step"/> is 1-based).</summary>
    public static void AdamUpdate(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, int step)
    {
        Debug.Assert(g.Length == p.Length && m.Length == p.Length && v.Length == p.Length && step >= 1);
        float c1 = (float)(1.0 / (1.0 - Math.Pow(beta1, step)));
        float c2 = (float)(1.0 / (1.0 - Math.Pow(beta2, step)));
        float omb1 = 1f - beta1, omb2 = 1f - beta2;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int n = Vector<float>.Count;
            var vb1 = new Vector<float>(beta1); var vb2 = new Vector<float>(beta2);
            var vo1 = new Vector<float>(omb1); var vo2 = new Vector<float>(omb2);
            var vc1 = new Vector<float>(c1); var vc2 = new Vector<float>(c2);
            var vLr = new Vector<float>(lr); var vEps = new Vector<float>(eps);
            for (; i <= p.Length - n; i += n)
            {
                var vg = new Vector<float>(g[i..]);
                var vm = vb1 * new Vector<float>(m[i..]) + vo1 * vg;
                var vv = vb2 * new Vector<float>(v[i..]) + vo2 * (vg * vg);
                vm.CopyTo(m[i..]); vv.CopyTo(v[i..]);
                (new Vector<float>(p[i..]) - vLr * (vm * vc1) / (Vector.SquareRoot(vv * vc2) + vEps)).CopyTo(p[i..]);
            }
        }
        for (; i < p.Length; i++)
        {
            float mi = beta1 * m[i] + omb1 * g[i];
            float vi = beta2 * v[i] + omb2 * (g[i] * g[i]);
            m[i] = mi; v[i] = vi;
            p[i] -= lr * (mi * c1) / (MathF.Sqrt(vi * c2) + eps);
        }
    }

    /// <summary>SGD with momentum (PyTorch): buf = momentum·buf + g; p −= lr·buf.</summary>
    public static void SgdMomentumUpdate(Span<float> p, ReadOnlySpan<float> g, Span<float> buf, float lr, float momentum)
    {
        Debug.Assert(g.Length == p.Length && buf.Length == p.Length);
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int n = Vector<float>.Count;
            var vMu = new Vector<float>(momentum); var vLr = new Vector<float>(lr);
            for (; i <= p.Length - n; i += n)
            {
                var vb = vMu * new Vector<float>(buf[i..]) + new Vector<float>(g[i..]);
                vb.CopyTo(buf[i..]);
                (new Vector<float>(p[i..]) - vLr * vb).CopyTo(p[i..]);
            }
        }
        for (; i < p.Length; i++)
        {
            float b = momentum * buf[i] + g[i];
            buf[i] = b;
            p[i] -= lr * b;
        }
    }

    /// <summary>Σ x² accumulated in double (for the global gradient norm).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        double s = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<float>.Count)
        {
            var acc = Vector<double>.Zero;
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                Vector.Widen(new Vector<float>(x[i..]), out Vector<double> lo, out Vector<double> hi);
                acc += lo * lo + hi * hi;
            }
            s = Vector.Sum(acc);
        }
        for (; i < x.Length; i++) s += (double)x[i] * x[i];
        return s;
    }

    // ---- Scalar twins ----

    internal static void RmsPropUpdateScalar(Span<float> p, ReadOnlySpan<float> g, Span<float> ms, float lr, float rho, float eps)
    {
        for (int i = 0; i < p.Length; i++)
        {
            ms[i] = rho * ms[i] + (1f - rho) * (g[i] * g[i]);
            p[i] -= lr * g[i] / MathF.Sqrt(ms[i] + eps);
        }
    }

    internal static void AdamUpdateScalar(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, int step)
    {
        double c1 = 1.0 - Math.Pow(beta1, step), c2 = 1.0 - Math.Pow(beta2, step);
        for (int i = 0; i < p.Length; i++)
        {
            m[i] = beta1 * m[i] + (1f - beta1) * g[i];
            v[i] = beta2 * v[i] + (1f - beta2) * (g[i] * g[i]);
            p[i] -= lr * (float)(m[i] / c1) / (MathF.Sqrt((float)(v[i] / c2)) + eps);
        }
    }

    internal static void SgdMomentumUpdateScalar(Span<float> p, ReadOnlySpan<float> g, Span<float> buf, float lr, float momentum)
    {
        for (int i = 0; i < p.Length; i++)
        {
            buf[i] = momentum * buf[i] + g[i];
            p[i] -= lr * buf[i];
        }
    }

    internal static double SumOfSquaresScalar(ReadOnlySpan<float> x)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * x[i];
        return s;
    }
}
