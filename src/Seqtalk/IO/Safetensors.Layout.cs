using Seqtalk.Nn;

namespace Seqtalk.IO;

// The bridge between the flat parameter buffer and named tensors: the ParameterLayout is the single
// list of names and shapes, so saving walks it and loading checks the file against it.
internal static partial class Safetensors
{
    /// <summary>One tensor per layout slot, in layout order, each a copy of its slice of <paramref name="parameters"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="parameters"/> is not <c>layout.TotalLength</c> long.</exception>
    internal static IReadOnlyList<TensorEntry> FromLayout(ParameterLayout layout, ReadOnlySpan<float> parameters)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (parameters.Length != layout.TotalLength)
        {
            throw new ArgumentException($"The layout needs {layout.TotalLength} parameters but {parameters.Length} were given.", nameof(parameters));
        }
        var tensors = new List<TensorEntry>(layout.Slots.Count);
        foreach (var slot in layout.Slots)
        {
            tensors.Add(new TensorEntry(slot.Name, (int[])slot.Shape.Clone(), parameters.Slice(slot.Offset, slot.Length).ToArray()));
        }
        return tensors;
    }

    /// <summary>
    /// Fills a flat parameter buffer in layout order from <paramref name="content"/>. Every layout
    /// tensor must be present with exactly its shape, and the file must hold no other tensor.
    /// </summary>
    /// <param name="content">What <see cref="Read"/> returned.</param>
    /// <param name="layout">The layout of the model the weights are loaded into.</param>
    /// <param name="fileName">The file name used in error messages.</param>
    /// <exception cref="ModelFormatException">A tensor is missing, has another shape, or is not part of the layout.</exception>
    internal static float[] ToFlat(SafetensorsContent content, ParameterLayout layout, string fileName)
    {
        ArgumentNullException.ThrowIfNull(content);
        ArgumentNullException.ThrowIfNull(layout);
        var flat = new float[layout.TotalLength];
        foreach (var slot in layout.Slots)
        {
            if (!content.Tensors.TryGetValue(slot.Name, out var tensor))
            {
                throw new ModelFormatException($"{fileName}: tensor '{slot.Name}' is missing; the model config needs it with shape {FormatShape(slot.Shape)}.");
            }
            if (!tensor.Shape.AsSpan().SequenceEqual(slot.Shape))
            {
                throw new ModelFormatException($"{fileName}: tensor '{slot.Name}' has shape {FormatShape(tensor.Shape)} but the model config needs {FormatShape(slot.Shape)}; do config.json and the weights belong together?");
            }
            tensor.Data.CopyTo(flat.AsSpan(slot.Offset, slot.Length));
        }
        var extra = content.Tensors.Keys.Where(name => !layout.TryGetSlot(name, out _)).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
        {
            string more = extra.Count > 1 ? $" (and {extra.Count - 1} more)" : "";
            throw new ModelFormatException($"{fileName}: tensor {Quote(extra[0])}{more} is not part of the model config; do config.json and the weights belong together?");
        }
        return flat;
    }
}
