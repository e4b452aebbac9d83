// Kernels.Embedding: table lookup (gather) and its backward (scatter-add).
//
// Legend: N rows (tokens), E embedding width, V table rows.
// Forward:  out[n] = table[ids[n]].   Backward: dTable[ids[n]] += dOut[n] (accumulated).
// Threading: rows that share an id write the same table row, so the backward is run by one thread
// (it is N·E additions, negligible next to the matrix products).

using System.Diagnostics;
using System.Numerics.Tensors;

namespace Seqtalk.Kernels;

internal static partial class Kernels
{
    /// <summary>output[n, :] = table[ids[n], :] for n in [rowStart, rowEnd).</summary>
    public static void EmbeddingForward(
        ReadOnlySpan<float> table,      // [V, E]
        ReadOnlySpan<int> ids,          // [N]
        Span<float> output,             // [N, E]
        int dim, int rowStart, int rowEnd)
    {
        Debug.Assert(output.Length >= rowEnd * dim);
        for (int n = rowStart; n < rowEnd; n++)
            table.Slice(ids[n] * dim, dim).CopyTo(output.Slice(n * dim, dim));
    }

    /// <summary>dTable[ids[n], :] += dOutput[n, :] for n in [rowStart, rowEnd).</summary>
    public static void EmbeddingBackward(
        ReadOnlySpan<int> ids,          // [N]
        ReadOnlySpan<float> dOutput,    // [N, E]
        Span<float> dTable,             // [V, E]  accumulated
        int dim, int rowStart, int rowEnd)
    {
        Debug.Assert(dOutput.Length >= rowEnd * dim);
        for (int n = rowStart; n < rowEnd; n++)
        {
            Span<float> row = dTable.Slice(ids[n] * dim, dim);
            TensorPrimitives.Add(row, dOutput.Slice(n * dim, dim), row);
        }
    }

    // ---- Scalar twins ----

    internal static void EmbeddingForwardScalar(ReadOnlySpan<float> table, ReadOnlySpan<int> ids, Span<float> output, int dim, int rowStart, int rowEnd)
    {
        for (int n = rowStart; n < rowEnd; n++)
            for (int e = 0; e < dim; e++) output[n * dim + e] = table[ids[n] * dim + e];
    }

    internal static void EmbeddingBackwardScalar(ReadOnlySpan<int> ids, ReadOnlySpan<float> dOutput, Span<float> dTable, int dim, int rowStart, int rowEnd)
    {
        for (int n = rowStart; n < rowEnd; n++)
            for (int e = 0; e < dim; e++) dTable[ids[n] * dim + e] += dOutput[n * dim + e];
    }
}
