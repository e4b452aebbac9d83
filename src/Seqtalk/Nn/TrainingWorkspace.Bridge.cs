// TrainingWorkspace.Bridge: the learned bridge between the encoder and the decoder (ModelConfig.Bridge), as
// OpenNMT's `bridge` option, one Linear per state and per layer.
//
// Legend: B batch (rows in decoder slot order, as _h0/_c0), H hidden, L layers.
// Forward, per layer k, over encoder layer k's final states (both directions concatenated with a bidirectional
// encoder, H wide either way):
//   h0_k = tanh(h_enc,k · W_hᵀ + b_h)     (tanh keeps the decoder's h in an LSTM output's range, as Bahdanau's
//                                         s0 = tanh(W_s h←); OpenNMT applies ReLU to both states instead)
//   c0_k = c_enc,k · W_cᵀ + b_c           (linear: a cell state is not bounded; the "init_c" Linear of
//                                         Show, Attend and Tell)
// Backward: the decoder's dH0/dC0 are turned in place into the gradients of the encoder's final states, which
// the encoder backward reads as before, and dW/db are accumulated.

using System.Numerics.Tensors;
using K = Seqtalk.Kernels.Kernels;

namespace Seqtalk.Nn;

internal sealed partial class TrainingWorkspace
{
    private bool _bridge;
    private ParameterSlot[] _bridgeWh = [], _bridgeBh = [], _bridgeWc = [], _bridgeBc = [];
    private float[][] _bridgeInH = [], _bridgeInC = [];   // per layer [B, H]: the encoder's final states
    private float[] _bridgeD = [];                        // [B, H] scratch

    private void InitBridge()
    {
        _bridge = _model.Config.Bridge;
        if (!_bridge) return;
        var layout = _model.Layout;
        _bridgeWh = new ParameterSlot[_layers]; _bridgeBh = new ParameterSlot[_layers];
        _bridgeWc = new ParameterSlot[_layers]; _bridgeBc = new ParameterSlot[_layers];
        for (int k = 0; k < _layers; k++)
        {
            _bridgeWh[k] = layout[ParameterLayout.Names.BridgeWeightH(k)];
            _bridgeBh[k] = layout[ParameterLayout.Names.BridgeBiasH(k)];
            _bridgeWc[k] = layout[ParameterLayout.Names.BridgeWeightC(k)];
            _bridgeBc[k] = layout[ParameterLayout.Names.BridgeBiasC(k)];
        }
        _bridgeInH = Jagged(_layers, _maxBatch * _h);
        _bridgeInC = Jagged(_layers, _maxBatch * _h);
        _bridgeD = new float[_maxBatch * _h];
    }

    /// <summary>Replaces the encoder's final states in _h0/_c0 (rows [0, B)) with the bridge's outputs, keeping the inputs.</summary>
    private void BridgeForward(int batchSize)
    {
        int h = _h, len = batchSize * h;
        for (int k = 0; k < _layers; k++)
        {
            _h0[k].AsSpan(0, len).CopyTo(_bridgeInH[k]);
            _c0[k].AsSpan(0, len).CopyTo(_bridgeInC[k]);
            Span<float> h0 = _h0[k].AsSpan(0, len);
            K.MatMulForward(_bridgeInH[k].AsSpan(0, len), Param(_bridgeWh[k]), Param(_bridgeBh[k]), h0, batchSize, h, h, 0, batchSize);
            TensorPrimitives.Tanh(h0, h0);
            K.MatMulForward(_bridgeInC[k].AsSpan(0, len), Param(_bridgeWc[k]), Param(_bridgeBc[k]), _c0[k].AsSpan(0, len), batchSize, h, h, 0, batchSize);
        }
    }

    /// <summary>Backward of <see cref="BridgeForward"/>: _dH0/_dC0 (d of the bridge outputs) become d of its inputs, in place.</summary>
    private void BridgeBackward(int batchSize, Span<float> gradients)
    {
        int h = _h, len = batchSize * h;
        Span<float> d = _bridgeD.AsSpan(0, len);
        for (int k = _layers - 1; k >= 0; k--)
        {
            // Forward was h0 = tanh(pre): dPre = dh0 ⊙ (1 − h0²).
            Span<float> dH0 = _dH0[k].AsSpan(0, len);
            ReadOnlySpan<float> h0 = _h0[k].AsSpan(0, len);
            TensorPrimitives.Multiply(h0, h0, d);
            TensorPrimitives.Subtract(1f, d, d);
            TensorPrimitives.Multiply(d, dH0, d);
            // Forward was pre = h_enc·W_hᵀ + b_h: dW_h += dPreᵀ·h_enc, db_h += Σ dPre, dh_enc = dPre·W_h.
            K.MatMulBackwardWeight(d, _bridgeInH[k].AsSpan(0, len), Grad(gradients, _bridgeWh[k]), Grad(gradients, _bridgeBh[k]), batchSize, h, h, 0, h);
            dH0.Clear();
            K.MatMulBackwardInput(d, Param(_bridgeWh[k]), dH0, batchSize, h, h, 0, batchSize);
            // Forward was c0 = c_enc·W_cᵀ + b_c.
            Span<float> dC0 = _dC0[k].AsSpan(0, len);
            dC0.CopyTo(d);
            K.MatMulBackwardWeight(d, _bridgeInC[k].AsSpan(0, len), Grad(gradients, _bridgeWc[k]), Grad(gradients, _bridgeBc[k]), batchSize, h, h, 0, h);
            dC0.Clear();
            K.MatMulBackwardInput(d, Param(_bridgeWc[k]), dC0, batchSize, h, h, 0, batchSize);
        }
    }
}
