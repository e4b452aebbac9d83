namespace Seqtalk.Extensions.AI;

/// <summary>
/// Cuts a finished reply into the pieces that streaming sends: each piece is one word (a run of non-space
/// characters) with the spaces that precede it, so the pieces concatenate to exactly the reply. (Usage counts
/// the model's tokens, from <see cref="ChatModel.ReplyDetailed"/> and <see cref="ChatModel.CountQuestionTokens"/>, not these words.)
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

    /// <summary>Words in <paramref name="text"/>: runs of non-space characters (the most pieces <see cref="Split"/> makes).</summary>
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
