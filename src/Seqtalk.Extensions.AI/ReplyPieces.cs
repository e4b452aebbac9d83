namespace Seqtalk.Extensions.AI;

/// <summary>
/// Cuts a finished reply into the pieces that streaming sends, and counts tokens the way the server reports
/// them. The façade returns reply text, not token ids, so a "token" here is a word: a run of non-space
/// characters. Each piece is one word with the spaces that precede it, so the pieces concatenate to exactly
/// the reply.
/// </summary>
internal static class ReplyPieces
{
    /// <summary>Splits <paramref name="text"/> before every word that follows a space; the pieces concatenate to the text.</summary>
    public static List<string> Split(string text)
    {
        var pieces = new List<string>();
        int start = 0;
        for (int i = 1; i < text.Length; i++)
        {
            if (!char.IsWhiteSpace(text[i]) && char.IsWhiteSpace(text[i - 1]) && HasWord(text, start, i))
            {
                pieces.Add(text[start..i]);
                start = i;
            }
        }
        if (start < text.Length) pieces.Add(text[start..]);
        return pieces;
    }

    /// <summary>Words in <paramref name="text"/>: runs of non-space characters.</summary>
    public static int CountTokens(string text)
    {
        int count = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsWhiteSpace(text[i]) && (i == 0 || char.IsWhiteSpace(text[i - 1]))) count++;
        }
        return count;
    }

    private static bool HasWord(string text, int start, int end)
    {
        for (int i = start; i < end; i++)
        {
            if (!char.IsWhiteSpace(text[i])) return true;
        }
        return false;
    }
}
