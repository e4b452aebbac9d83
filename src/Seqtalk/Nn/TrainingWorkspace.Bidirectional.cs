// TrainingWorkspace.Bidirectional: the bidirectional encoder (ModelConfig.BidirectionalEncoder).
//
// Legend: R real source tokens (packed by step, as the unidirectional encoder), H hidden, D = H/2 per direction.
// Every encoder layer has a forward LSTM and a backward LSTM, D wide each. The backward one reads each row's
// real tokens in reverse, so padding is never seen (pack_padded_sequence semantics): reverse step τ of row b
// reads position len_b − 1 − τ. The rows still running at reverse step τ are those with len_b > τ, the same
// prefix as at forward step τ, so the backward LSTM runs on the same packed plan with its input gathered
// through the involution rev(τ, b) = (len_b − 1 − τ, b).
//   out[s] = [h_fwd(s); h_bwd(s)]   (H wide: the next layer's input, and the attention memory of the top layer)
//   decoder layer k starts from [h_fwd after the last token; h_bwd after the first token] (and the same for c):
//   this concatenation is the whole bridge, as OpenNMT's brnn encoder does (no weights), unless ModelConfig.Bridge
//   passes it through the learned bridge (TrainingWorkspace.Bridge.cs).
// Dropout (TrainingWorkspace.Regularization.cs) works as in the unidirectional encoder: the embedding mask is applied
// before both directions read the embeddings, and the mask between layers k−1 and k covers the H-wide [fwd; bwd]
// output (the two halves get distinct mask elements), so both directions of layer k read the same dropped input;
// the final states handed to the decoder and the top layer's outputs (the attention memory) are never dropped.
// Both directions' final states sit at packed step len_b − 1 (forward: its last step; backward: its last
// reverse step), which is where the decoder's initial-state gradients enter in backward.

using System.Numerics.Tensors;
using Seqtalk.Data;

namespace Seqtalk.Nn;

internal sealed partial class TrainingWorkspace
{
    private bool _bidirectional;
    private LayerSlots[] _encRevSlots = [];
    private float[][] _biasRev = [];                                         // per layer [4D]
    private float[][] _encHF = [], _encGR = [], _encCR = [], _encHR = [], _encHPrevR = [];   // per layer, packed
    private float[] _encXR = [], _dXR = [];                                  // [R, max(E, H)]
    private float[] _dHF = [], _dCF = [], _dHR = [], _dCR = [];              // [R, D]
    private int[] _revIdx = [];                                              // [R]

    private void InitBidirectional(int maxSourceRows)
    {
        _bidirectional = _model.Config.BidirectionalEncoder;
        if (!_bidirectional) return;
        int d = _h / 2, wide = Math.Max(_e, _h);
        var layout = _model.Layout;
        _encRevSlots = new LayerSlots[_layers];
        for (int k = 0; k < _layers; k++)
        {
            _encRevSlots[k] = new(
                layout[ParameterLayout.Names.LstmReverseWeightIh(ParameterLayout.Names.Encoder, k)], layout[ParameterLayout.Names.LstmReverseWeightHh(ParameterLayout.Names.Encoder, k)],
                layout[ParameterLayout.Names.LstmReverseBiasIh(ParameterLayout.Names.Encoder, k)], layout[ParameterLayout.Names.LstmReverseBiasHh(ParameterLayout.Names.Encoder, k)]);
        }
        _biasRev = Jagged(_layers, 4 * d);
        _encHF = Jagged(_layers, maxSourceRows * d);
        _encGR = Jagged(_layers, checked(maxSourceRows * 4 * d));
        _encCR = Jagged(_layers, maxSourceRows * d);
        _encHR = Jagged(_layers, maxSourceRows * d);
        _encHPrevR = Jagged(_layers, maxSourceRows * d);
        _encXR = new float[checked(maxSourceRows * wide)]; _dXR = new float[maxSourceRows * wide];
        _dHF = new float[maxSourceRows * d]; _dCF = new float[maxSourceRows * d];
        _dHR = new float[maxSourceRows * d]; _dCR = new float[maxSourceRows * d];
        _revIdx = new int[maxSourceRows];
    }

    /// <summary>Runs every encoder layer in both directions over the packed source (input _encX, rows real tokens):
    /// _encH[k] gets the concatenated outputs; _h0/_c0 the decoder's initial states.</summary>
    private void BidirectionalEncoderForward(Batch batch, int rows, ReadOnlySpan<int> offset, ReadOnlySpan<int> count)
    {
        int bsz = batch.Size, h = _h, d = h / 2;
        for (int b = 0; b < bsz; b++)
        {
            int len = batch.SourceLengths[b];
            for (int t = 0; t < len; t++) _revIdx[_encOffset[t] + b] = _encOffset[len - 1 - t] + b;
        }
        for (int k = 0; k < _layers; k++)
        {
            TensorPrimitives.Add(Param(_encRevSlots[k].BIh), Param(_encRevSlots[k].BHh), _biasRev[k]);
            int inDim = k == 0 ? _e : h;
            float[] x = k == 0 ? _encX : _encH[k - 1];
            // Dropout between layers on the concatenated [fwd; bwd] output (PyTorch nn.LSTM(bidirectional, dropout)):
            // one mask over H, so the two directions' halves draw distinct elements; both directions of layer k read it.
            if (k > 0) DropForward(DropoutTensor.EncoderLayer(k - 1), x, rows, h, bsz);
            Lstm.Forward(x, inDim, rows, offset, count, _zeros, _zeros, Weights(_encSlots[k], _bias[k]), d,
                _encGates[k], _encC[k], _encHF[k], _encHPrev[k], _lstmParallel);
            for (int p = 0; p < rows; p++) x.AsSpan(_revIdx[p] * inDim, inDim).CopyTo(_encXR.AsSpan(p * inDim, inDim));
            Lstm.Forward(_encXR, inDim, rows, offset, count, _zeros, _zeros, Weights(_encRevSlots[k], _biasRev[k]), d,
                _encGR[k], _encCR[k], _encHR[k], _encHPrevR[k], _lstmParallel);
            // out[p] = [h_fwd(p); h_bwd(p)], h_bwd(p) being reverse row rev(p).
            float[] output = _encH[k];
            for (int p = 0; p < rows; p++)
            {
                _encHF[k].AsSpan(p * d, d).CopyTo(output.AsSpan(p * h, d));
                _encHR[k].AsSpan(_revIdx[p] * d, d).CopyTo(output.AsSpan(p * h + d, d));
            }
            // Both final states are at packed step len_b − 1.
            for (int b = 0; b < bsz; b++)
            {
                int pos = (_encOffset[batch.SourceLengths[b] - 1] + b) * d, slot = _decPos[b] * h;
                _encHF[k].AsSpan(pos, d).CopyTo(_h0[k].AsSpan(slot, d));
                _encHR[k].AsSpan(pos, d).CopyTo(_h0[k].AsSpan(slot + d, d));
                _encC[k].AsSpan(pos, d).CopyTo(_c0[k].AsSpan(slot, d));
                _encCR[k].AsSpan(pos, d).CopyTo(_c0[k].AsSpan(slot + d, d));
            }
        }
    }

    /// <summary>Backward of <see cref="BidirectionalEncoderForward"/>, layers in reverse: _dA holds d out of the top
    /// layer on entry (attention's d memory, if any) and d _encX on exit; the decoder's _dH0/_dC0 enter at step len_b − 1.</summary>
    private void BidirectionalEncoderBackward(Batch batch, int rows, ReadOnlySpan<int> offset, ReadOnlySpan<int> count, Span<float> gradients)
    {
        int bsz = batch.Size, h = _h, d = h / 2;
        for (int k = _layers - 1; k >= 0; k--)
        {
            int inDim = k == 0 ? _e : h;
            // Split d out: forward half in place, backward half into reverse order.
            for (int p = 0; p < rows; p++)
            {
                _dA.AsSpan(p * h, d).CopyTo(_dHF.AsSpan(p * d, d));
                _dA.AsSpan(p * h + d, d).CopyTo(_dHR.AsSpan(_revIdx[p] * d, d));
            }
            _dCF.AsSpan(0, rows * d).Clear();
            _dCR.AsSpan(0, rows * d).Clear();
            for (int b = 0; b < bsz; b++)
            {
                int pos = (_encOffset[batch.SourceLengths[b] - 1] + b) * d, slot = _decPos[b] * h;
                Add(_dHF.AsSpan(pos, d), _dH0[k].AsSpan(slot, d));
                Add(_dHR.AsSpan(pos, d), _dH0[k].AsSpan(slot + d, d));
                Add(_dCF.AsSpan(pos, d), _dC0[k].AsSpan(slot, d));
                Add(_dCR.AsSpan(pos, d), _dC0[k].AsSpan(slot + d, d));
            }
            float[] x = k == 0 ? _encX : _encH[k - 1];
            _dB.AsSpan(0, rows * inDim).Clear();
            Lstm.Backward(x, inDim, rows, offset, count, _zeros, Weights(_encSlots[k], _bias[k]), d, _encGates[k], _encC[k], _encHPrev[k],
                _dHF, _dCF, _dPre, _dB, default, default, _discard, Grads(gradients, _encSlots[k]), _lstmParallel);
            // The reverse LSTM read x gathered through rev: re-gather its input, then scatter its dx back.
            for (int p = 0; p < rows; p++) x.AsSpan(_revIdx[p] * inDim, inDim).CopyTo(_encXR.AsSpan(p * inDim, inDim));
            _dXR.AsSpan(0, rows * inDim).Clear();
            Lstm.Backward(_encXR, inDim, rows, offset, count, _zeros, Weights(_encRevSlots[k], _biasRev[k]), d, _encGR[k], _encCR[k], _encHPrevR[k],
                _dHR, _dCR, _dPre, _dXR, default, default, _discard, Grads(gradients, _encRevSlots[k]), _lstmParallel);
            for (int p = 0; p < rows; p++) Add(_dB.AsSpan(_revIdx[p] * inDim, inDim), _dXR.AsSpan(p * inDim, inDim));
            (_dA, _dB) = (_dB, _dA);
            if (k > 0) DropBackward(DropoutTensor.EncoderLayer(k - 1), _dA, rows, h);
        }
    }

    private static void Add(Span<float> destination, ReadOnlySpan<float> value) => TensorPrimitives.Add(destination, value, destination);
}
