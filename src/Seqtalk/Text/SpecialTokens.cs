namespace Seqtalk.Text;

/// <summary>
/// The reserved tokens every vocabulary starts with, at fixed ids. They are never produced by
/// splitting text: a question that contains the characters <c>&lt;s&gt;</c> is ordinary text.
/// </summary>
public static class SpecialTokens
{
    /// <summary>Padding, id 0. Never counted in the loss or the accuracy.</summary>
    public const string Pad = "<pad>";
    /// <summary>Unknown token, id 1.</summary>
    public const string Unknown = "<unk>";
    /// <summary>Start of a target sequence, id 2 (the tutorial's <c>&lt;start&gt;</c>).</summary>
    public const string Start = "<s>";
    /// <summary>End of a target sequence, id 3 (the tutorial's <c>&lt;end&gt;</c>).</summary>
    public const string End = "</s>";

    /// <summary>Id of <see cref="Pad"/>.</summary>
    public const int PadId = 0;
    /// <summary>Id of <see cref="Unknown"/>.</summary>
    public const int UnknownId = 1;
    /// <summary>Id of <see cref="Start"/>.</summary>
    public const int StartId = 2;
    /// <summary>Id of <see cref="End"/>.</summary>
    public const int EndId = 3;
    /// <summary>Number of reserved ids; the first ordinary token has this id.</summary>
    public const int Count = 4;

    /// <summary>The reserved tokens in id order.</summary>
    public static IReadOnlyList<string> All { get; } = [Pad, Unknown, Start, End];
}
