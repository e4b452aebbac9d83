namespace Seqtalk;

/// <summary>
/// A failure caused by the user's input (a file, an option, a model directory) rather than by a bug.
/// The message is one line of clear English that names what is wrong and, where it helps, what to do.
/// Apps print it as it is, without a stack trace.
/// </summary>
public class SeqtalkException : Exception
{
    /// <summary>Creates an exception with a one-line message.</summary>
    public SeqtalkException(string message) : base(message) { }

    /// <summary>Creates an exception with a one-line message and the exception that caused it.</summary>
    public SeqtalkException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates an exception with a generic message.</summary>
    public SeqtalkException() : base("Seqtalk failed.") { }
}
