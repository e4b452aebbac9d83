namespace Seqtalk.Data;

/// <summary>One question/answer pair as read from a pairs file, text verbatim.</summary>
/// <param name="Question">The question field, exactly as written in the file (not trimmed or normalized).</param>
/// <param name="Answer">The answer field, exactly as written in the file (not trimmed or normalized).</param>
/// <param name="Line">The 1-based line of the file where the row starts (a quoted CSV field may span lines).</param>
public readonly record struct QaPair(string Question, string Answer, long Line);
