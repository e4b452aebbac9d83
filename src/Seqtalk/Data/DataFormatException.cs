namespace Seqtalk.Data;

/// <summary>
/// A pairs file that cannot be read: missing, empty, not UTF-8, malformed, or without the needed columns.
/// The one-line message names the file and, where there is one, the line:
/// <c>"data.csv, line 7: invalid UTF-8 (byte 0xFF at column 3)."</c>
/// </summary>
public sealed class DataFormatException : SeqtalkException
{
    /// <summary>Creates the exception; the message is <c>"{file}, line {line}: {problem}"</c>, or
    /// <c>"{file}: {problem}"</c> when <paramref name="line"/> is 0.</summary>
    /// <param name="file">The path of the file, as the user gave it.</param>
    /// <param name="line">The 1-based line of the problem, or 0 when it concerns the whole file.</param>
    /// <param name="problem">One sentence describing the problem, ending with a full stop.</param>
    public DataFormatException(string file, long line, string problem)
        : base(line > 0 ? $"{file}, line {line}: {problem}" : $"{file}: {problem}")
    {
        File = file;
        Line = line;
    }

    /// <summary>Creates the exception with a message and no file.</summary>
    /// <param name="message">The one-line message.</param>
    public DataFormatException(string message) : base(message) => File = "";

    /// <summary>Creates the exception with a message, the exception that caused it, and no file.</summary>
    /// <param name="message">The one-line message.</param>
    /// <param name="innerException">The cause.</param>
    public DataFormatException(string message, Exception innerException) : base(message, innerException) => File = "";

    /// <summary>Creates the exception with a generic message.</summary>
    public DataFormatException() : this("The pairs file cannot be read.") { }

    /// <summary>The path of the file, as the user gave it.</summary>
    public string File { get; }

    /// <summary>The 1-based line of the problem, or 0 when the problem concerns the whole file.</summary>
    public long Line { get; }
}
