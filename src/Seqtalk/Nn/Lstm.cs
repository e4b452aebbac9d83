// Lstm: one LSTM layer run over a whole sequence, forward and backward side by side.
//
// Legend: B batch, T steps, H hidden, G = 4H, in = input width, R = rows of the sequence.
// The sequence is "packed" like torch.nn.utils.rnn.pack_padded_sequence: step t occupies rows
// [offset[t], offset[t] + count[t]) of every [R, ·] buffer, and the active rows of step t are a prefix
// of those of step t−1 (count is non-increasing). The encoder passes only real tokens this way, so a
// padded step never touches the state; the decoder, its rows sorted by target length, does the same.
// All input projections x·W_ihᵀ + b_ih + b_hh are one GEMM over R rows; only h·W_hhᵀ runs per step.
// hPrev (the h that fed each row) is stored so that dW_hh is one GEMM over R rows as well.
// Accumulation rule: parameter gradients, dX, dH, dC and the initial-state gradients are ADDED to;
// dPre is written. Backward runs the steps in exact reverse order.
// Threads (LstmParallel, optional): a time step is cut into blocks of UnitBlock hidden units, fixed by H. Block j
// of forward step t computes the four gate columns of its units (h_{t−1}·W_hhᵀ, each thread packing only its
// rows of W_hh) and their c and h; block j of backward section t computes dh_{t−1} for its units (dPre_t·W_hh,
// its columns of W_hh) and then the gates' backward of step t−1 for the same units, which need only those
// columns of dh_{t−1}. So each step is one parallel section with one barrier. The GEMMs over all rows (input
// projection, dW, dX) are cut into fixed column blocks. Every output element is computed by the same
// operations whatever the thread count, so 1 and N threads give the same bits.

using K = Seqtalk.Kernels.Kernels;


namespace Seqtalk.Nn;

/// <summary>Weights of one LSTM layer (slices of the flat parameter buffer).</summary>
internal readonly ref struct LstmWeights(ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<float> bias)
{
    public ReadOnlySpan<float> WIh { get; } = wIh;      // [G, in]
    public ReadOnlySpan<float> WHh { get; } = wHh;      // [G, H]
    public ReadOnlySpan<float> Bias { get; } = bias;    // [G]  b_ih + b_hh
}

/// <summary>Gradient slices of one LSTM layer.</summary>
internal readonly ref struct LstmGradients(Span<float> dWIh, Span<float> dWHh, Span<float> dBIh, Span<float> dBHh)
{
    public Span<float> DWIh { get; } = dWIh;
    public Span<float> DWHh { get; } = dWHh;
    public Span<float> DBIh { get; } = dBIh;
    public Span<float> DBHh { get; } = dBHh;
}

internal static unsafe class Lstm
{
    /// <summary>Hidden units per block of a time step: a step with H ≤ UnitBlock is one block (the whole-width calls).</summary>
    internal const int UnitBlock = 64;

    /// <summary>Columns per block of the GEMMs over all rows (input projection, dW rows, dX columns).</summary>
    internal const int ColumnBlock = 256;

    /// <summary>Blocks of a step for hidden width <paramref name="hidden"/>.</summary>
    internal static int UnitBlocks(int hidden) => Math.Max(1, (hidden + UnitBlock - 1) / UnitBlock);

    /// <summary>Runs the layer over all steps. h0, c0: [count[0], H] initial state.</summary>
    public static void Forward(
        ReadOnlySpan<float> x, int inDim, int rows,         // x [R, in]
        ReadOnlySpan<int> offset, ReadOnlySpan<int> count,  // [T]
        ReadOnlySpan<float> h0, ReadOnlySpan<float> c0,     // [B, H]
        LstmWeights w, int hidden,
        Span<float> gates,                                  // [R, G]  pre-activations, then post-activations
        Span<float> c,                                      // [R, H]
        Span<float> h,                                      // [R, H]
        Span<float> hPrev,                                  // [R, H]  the h each row started from
        LstmParallel? parallel = null)
    {
        int g4 = 4 * hidden, blocks = UnitBlocks(hidden);
        var profile = parallel?.Profile;
        long clock = PhaseProfile.Now;
        fixed (float* px = x, pWIh = w.WIh, pWHh = w.WHh, pBias = w.Bias, pH0 = h0, pC0 = c0, pGates = gates, pC = c, pH = h, pHPrev = hPrev)
        {
            var a = new StepArgs
            {
                X = px,
                WIh = pWIh,
                WHh = pWHh,
                Bias = pBias,
                Gates = pGates,
                C = pC,
                H = pH,
                HPrev = pHPrev,
                InDim = inDim,
                Rows = rows,
                Hidden = hidden,
                Blocks = blocks,
            };
            // pre = x·W_ihᵀ + (b_ih + b_hh) for every step at once.
            RunItems(parallel, ref a, Section.InputProjection, Math.Max(1, (g4 + ColumnBlock - 1) / ColumnBlock));
            // W_hhᵀ packed once for all steps (each step's blocks would otherwise pack their columns again).
            float[]? packed = PackingFor(parallel, blocks, hidden, K.GemmPackedLength(g4, hidden));
            fixed (float* pPacked = packed)
            {
                a.Packed = pPacked;
                a.PackedLength = packed?.Length ?? 0;
                if (packed is not null) RunItems(parallel, ref a, Section.PackForward, PackItems(K.MatMulPackedPanels(g4)));
                if (profile is not null) clock = profile.Add(TrainingPhase.InputProjection, clock);
                for (int t = 0; t < offset.Length; t++)
                {
                    int o = offset[t], n = count[t];
                    if (n == 0) break;
                    a.N = n;
                    a.Step = o;
                    // pre += hPrev·W_hhᵀ, with hPrev = h0 or the first n rows of step t−1 (a prefix: rows are sorted).
                    if (t == 0) { a.Hp = pH0; a.Cp = pC0; }
                    else { a.Hp = pH + (nint)offset[t - 1] * hidden; a.Cp = pC + (nint)offset[t - 1] * hidden; }
                    RunItems(parallel, ref a, Section.ForwardStep, blocks);
                }
            }
            if (profile is not null) profile.Add(TrainingPhase.RecurrentForward, clock);
        }
    }

    /// <summary>Backward of <see cref="Forward"/>, in reverse step order. dH and dC hold the gradients
    /// arriving from outside (the layer above, the loss, the final state) and are consumed in place;
    /// dX, dH0, dC0 (any may be empty) and the parameter gradients are accumulated.</summary>
    public static void Backward(
        ReadOnlySpan<float> x, int inDim, int rows,
        ReadOnlySpan<int> offset, ReadOnlySpan<int> count,
        ReadOnlySpan<float> c0,                             // [B, H]
        LstmWeights w, int hidden,
        ReadOnlySpan<float> gates, ReadOnlySpan<float> c, ReadOnlySpan<float> hPrev,
        Span<float> dH,                                     // [R, H]
        Span<float> dC,                                     // [R, H]
        Span<float> dPre,                                   // [R, G]  scratch, written
        Span<float> dX,                                     // [R, in] or empty
        Span<float> dH0, Span<float> dC0,                   // [B, H] or empty
        Span<float> discard,                                // [B, H] scratch for a dropped dC0
        LstmGradients grads,
        LstmParallel? parallel = null)
    {
        int g4 = 4 * hidden, blocks = UnitBlocks(hidden);
        var profile = parallel?.Profile;
        long clock = PhaseProfile.Now;
        fixed (float* px = x, pWIh = w.WIh, pWHh = w.WHh, pC0 = c0, pGates = gates, pC = c, pHPrev = hPrev,
               pDH = dH, pDC = dC, pDPre = dPre, pDX = dX, pDH0 = dH0, pDC0 = dC0, pDiscard = discard,
               pDWIh = grads.DWIh, pDWHh = grads.DWHh, pDBIh = grads.DBIh, pDBHh = grads.DBHh)
        {
            var a = new StepArgs
            {
                X = px,
                WIh = pWIh,
                WHh = pWHh,
                Gates = pGates,
                C = pC,
                HPrev = pHPrev,
                DH = pDH,
                DC = pDC,
                DPre = pDPre,
                DX = dX.IsEmpty ? null : pDX,
                DWIh = pDWIh,
                DWHh = pDWHh,
                DBIh = pDBIh,
                DBHh = pDBHh,
                InDim = inDim,
                Rows = rows,
                Hidden = hidden,
                Blocks = blocks,
            };
            // Section t: dh_{t−1} += dPre_t·W_hh for the block's units, then the gates' backward of step t−1 for the
            // same units (forward was c = f⊙cPrev + i⊙g, h = o⊙tanh(c): dPre written, dcPrev accumulated).
            // The first section has only the gates of the last step; the last only step 0's product, into dH0.
            int last = offset.Length - 1;
            while (last >= 0 && count[last] == 0) last--;
            // W_hh packed once for all steps' dh products.
            float[]? packed = PackingFor(parallel, blocks, hidden, K.GemmPackedLength(hidden, g4));
            fixed (float* pPacked = packed)
            {
                a.Packed = pPacked;
                a.PackedLength = packed?.Length ?? 0;
                if (packed is not null) RunItems(parallel, ref a, Section.PackBackward, PackItems(K.MatMulPackedPanels(hidden)));
                for (int t = last + 1; t >= 0; t--)
                {
                    a.GemmN = 0;
                    if (t <= last && (t > 0 || !dH0.IsEmpty))
                    {
                        a.GemmN = count[t];
                        a.GemmDPre = pDPre + (nint)offset[t] * g4;
                        a.GemmDhp = t > 0 ? pDH + (nint)offset[t - 1] * hidden : pDH0;
                    }
                    a.N = 0;
                    if (t >= 1)
                    {
                        int s = t - 1, n = count[s], o = offset[s];
                        a.N = n;
                        a.Step = o;
                        if (s == 0) { a.Cp = pC0; a.Dcp = dC0.IsEmpty ? pDiscard : pDC0; }
                        else { a.Cp = pC + (nint)offset[s - 1] * hidden; a.Dcp = pDC + (nint)offset[s - 1] * hidden; }
                    }
                    if (a.GemmN > 0 || a.N > 0) RunItems(parallel, ref a, Section.BackwardStep, blocks);
                }
                a.Packed = null;
                a.PackedLength = 0;
            }
            if (profile is not null) clock = profile.Add(TrainingPhase.RecurrentBackward, clock);
            // Forward was pre = x·W_ihᵀ + hPrev·W_hhᵀ + b_ih + b_hh, over all rows at once: dW_ih, dW_hh (with the
            // biases) by blocks of their rows, dX by blocks of its columns, all in one section.
            int wBlocks = (g4 + ColumnBlock - 1) / ColumnBlock, xBlocks = dX.IsEmpty ? 0 : (inDim + ColumnBlock - 1) / ColumnBlock;
            a.WeightBlocks = wBlocks;
            RunItems(parallel, ref a, Section.WeightGradients, 2 * wBlocks + xBlocks);
            if (profile is not null) profile.Add(TrainingPhase.WeightGradients, clock);
        }
    }

    // ---- The items of the parallel sections ----

    internal enum Section { InputProjection, PackForward, ForwardStep, PackBackward, BackwardStep, WeightGradients }

    /// <summary>Packed panels per item of a packing section.</summary>
    private const int PackPanels = 8;

    private static int PackItems(int panels) => (panels + PackPanels - 1) / PackPanels;

    // The scratch that holds W_hh packed for the steps' GEMMs, or null to let each call pack its own columns: only
    // with several blocks (each at a panel boundary: H a multiple of the panel width) and SIMD.
    private static float[]? PackingFor(LstmParallel? parallel, int blocks, int hidden, int length)
    {
        if (parallel is null || blocks == 1 || !K.GemmIsVectorized || hidden % K.GemmPanelWidth != 0) return null;
        if (parallel.Packed.Length < length) parallel.Packed = new float[length];
        return parallel.Packed;
    }

    /// <summary>Pointers to the pinned buffers of one Forward or Backward call, and the current step.</summary>
    internal struct StepArgs
    {
        public float* X, WIh, WHh, Bias, Gates, C, H, HPrev, Hp, Cp;
        public float* DH, DC, DPre, DX, DWIh, DWHh, DBIh, DBHh, Dcp, GemmDPre, GemmDhp;
        public float* Packed;
        public int InDim, Rows, Hidden, Blocks, N, Step, GemmN, WeightBlocks, PackedLength;
    }

    private static void RunItems(LstmParallel? parallel, ref StepArgs a, Section section, int items)
    {
        if (parallel is null || parallel.Pool.Threads == 1 || items == 1)
        {
            for (int i = 0; i < items; i++) Item(ref a, section, i);
            return;
        }
        parallel.Args = a;
        parallel.Section = section;
        parallel.Pool.Run(items, parallel.Body);
    }

    internal static void Item(ref StepArgs a, Section section, int item)
    {
        int hd = a.Hidden, g4 = 4 * hd;
        switch (section)
        {
            case Section.InputProjection:
                {
                    int c0 = item * ColumnBlock, c1 = Math.Min(g4, c0 + ColumnBlock);
                    K.MatMulForwardColumns(Floats(a.X, a.Rows * a.InDim), Floats(a.WIh, g4 * a.InDim), (a.Bias == null ? default : Floats(a.Bias, g4)), Floats(a.Gates, a.Rows * g4),
                        a.Rows, a.InDim, g4, 0, a.Rows, c0, c1, accumulate: false);
                    break;
                }
            case Section.PackForward:
                {
                    int panels = K.MatMulPackedPanels(g4);
                    K.PackMatMulForwardWeights(Floats(a.WHh, g4 * hd), hd, g4, Floats(a.Packed, a.PackedLength), item * PackPanels, Math.Min(panels, (item + 1) * PackPanels));
                    break;
                }
            case Section.PackBackward:
                {
                    int panels = K.MatMulPackedPanels(hd);
                    K.PackMatMulBackwardInputWeights(Floats(a.WHh, g4 * hd), hd, g4, Floats(a.Packed, a.PackedLength), item * PackPanels, Math.Min(panels, (item + 1) * PackPanels));
                    break;
                }
            case Section.ForwardStep:
                {
                    int n = a.N, u0 = item * UnitBlock, u1 = a.Blocks == 1 ? hd : Math.Min(hd, u0 + UnitBlock);
                    var hp = Floats(a.Hp, n * hd);
                    var gt = Floats(a.Gates + (nint)a.Step * g4, n * g4);
                    var wHh = Floats(a.WHh, g4 * hd);
                    if (a.Blocks == 1)
                    {
                        K.MatMulForward(hp, wHh, default, gt, n, hd, g4, 0, n, accumulate: true);
                    }
                    else
                    {
                        for (int q = 0; q < 4; q++)
                            K.MatMulForwardColumns(hp, wHh, Floats(a.Packed, a.PackedLength), default, gt, n, hd, g4, 0, n, q * hd + u0, q * hd + u1, accumulate: true);
                    }
                    K.LstmCellForward(gt, Floats(a.Cp, n * hd), gt, Floats(a.C + (nint)a.Step * hd, n * hd), Floats(a.H + (nint)a.Step * hd, n * hd),
                        hd, 0, n, u0, u1);
                    // hPrev (read by dW_hh in backward) of this step's rows, for the block's units.
                    float* src = a.Hp + u0, dst = a.HPrev + (nint)a.Step * hd + u0;
                    for (int r = 0; r < n; r++) new ReadOnlySpan<float>(src + (nint)r * hd, u1 - u0).CopyTo(new Span<float>(dst + (nint)r * hd, u1 - u0));
                    break;
                }
            case Section.BackwardStep:
                {
                    int u0 = item * UnitBlock, u1 = a.Blocks == 1 ? hd : Math.Min(hd, u0 + UnitBlock);
                    if (a.GemmN > 0)
                    {
                        // Forward was pre += hPrev·W_hhᵀ: dhPrev += dPre·W_hh (this block's columns of dhPrev).
                        int m = a.GemmN;
                        var dpre = Floats(a.GemmDPre, m * g4);
                        var dhp = Floats(a.GemmDhp, m * hd);
                        if (a.Blocks == 1) K.MatMulBackwardInput(dpre, Floats(a.WHh, g4 * hd), dhp, m, hd, g4, 0, m);
                        else K.MatMulBackwardInputColumns(dpre, Floats(a.WHh, g4 * hd), Floats(a.Packed, a.PackedLength), dhp, m, hd, g4, 0, m, u0, u1);
                    }
                    if (a.N > 0)
                    {
                        int n = a.N;
                        K.LstmCellBackward(Floats(a.Gates + (nint)a.Step * g4, n * g4), Floats(a.Cp, n * hd), Floats(a.C + (nint)a.Step * hd, n * hd),
                            Floats(a.DH + (nint)a.Step * hd, n * hd), Floats(a.DC + (nint)a.Step * hd, n * hd), Floats(a.DPre + (nint)a.Step * g4, n * g4),
                            Floats(a.Dcp, n * hd), hd, 0, n, u0, u1);
                    }
                    break;
                }
            case Section.WeightGradients:
                {
                    int rows = a.Rows, wb = a.WeightBlocks;
                    var dPreAll = Floats(a.DPre, rows * g4);
                    if (item < 2 * wb)
                    {
                        bool ih = item < wb;
                        int o0 = (item % wb) * ColumnBlock, o1 = Math.Min(g4, o0 + ColumnBlock);
                        if (ih) K.MatMulBackwardWeight(dPreAll, Floats(a.X, rows * a.InDim), Floats(a.DWIh, g4 * a.InDim), Floats(a.DBIh, g4), rows, a.InDim, g4, o0, o1);
                        else K.MatMulBackwardWeight(dPreAll, Floats(a.HPrev, rows * hd), Floats(a.DWHh, g4 * hd), Floats(a.DBHh, g4), rows, hd, g4, o0, o1);
                    }
                    else
                    {
                        int c0 = (item - 2 * wb) * ColumnBlock, c1 = Math.Min(a.InDim, c0 + ColumnBlock);
                        K.MatMulBackwardInputColumns(dPreAll, Floats(a.WIh, g4 * a.InDim), Floats(a.DX, rows * a.InDim), rows, a.InDim, g4, 0, rows, c0, c1);
                    }
                    break;
                }
        }
    }

    private static Span<float> Floats(float* p, int length) => new(p, length);
}

/// <summary>Threads for <see cref="Lstm"/>: the pool and the state of the section it runs (one workspace, one at a time).</summary>
internal sealed class LstmParallel
{
    internal Lstm.StepArgs Args;
    internal Lstm.Section Section;

    public LstmParallel(WorkerPool pool, PhaseProfile? profile = null)
    {
        Pool = pool;
        Profile = profile;
        Body = item => Lstm.Item(ref Args, Section, item);
    }

    /// <summary>The threads.</summary>
    public WorkerPool Pool { get; }

    /// <summary>Where the phases' times go, or null.</summary>
    public PhaseProfile? Profile { get; set; }

    /// <summary>Scratch for W_hh packed once per call (grown on first use).</summary>
    internal float[] Packed { get; set; } = [];

    /// <summary>The item delegate handed to the pool (made once).</summary>
    public Action<int> Body { get; }
}
