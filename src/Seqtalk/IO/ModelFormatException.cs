namespace Seqtalk.IO;

/// <summary>
/// A model file (for example <c>weights.safetensors</c>) is missing, damaged, or does not match the
/// model it is loaded into. The message is one line that names the file, the problem and, where
/// there is one, the tensor.
/// </summary>
public sealed class ModelFormatException : SeqtalkException
{
    /// <summary>Creates an exception with a one-line message.</summary>
    /// <param name="message">One line naming the file and the problem.</param>
    public ModelFormatException(string message) : base(message) { }

    /// <summary>Creates an exception with a one-line message and the exception that caused it.</summary>
    /// <param name="message">One line naming the file and the problem.</param>
    /// <param name="innerException">The underlying failure (a JSON or I/O error).</param>
    public ModelFormatException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception with a generic message.</summary>
    public ModelFormatException() : base("The model file is not valid.") { }
}
