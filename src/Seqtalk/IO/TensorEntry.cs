namespace Seqtalk.IO;

/// <summary>One named float32 tensor as stored in a safetensors file.</summary>
/// <param name="Name">Tensor name, e.g. <c>"dec.l0.w_ih"</c>.</param>
/// <param name="Shape">Row-major shape; the product of the dimensions equals <c>Data.Length</c> (an empty shape is a scalar).</param>
/// <param name="Data">The values, row-major. F32 only for now.</param>
internal sealed record TensorEntry(string Name, int[] Shape, float[] Data);

/// <summary>What <see cref="Safetensors.Read"/> returns: the tensors by name, in header order, and the
/// <c>__metadata__</c> strings (including <c>seqtalk.sha256</c> when the file has it).</summary>
internal sealed record SafetensorsContent(IReadOnlyDictionary<string, TensorEntry> Tensors, IReadOnlyDictionary<string, string> Metadata);
