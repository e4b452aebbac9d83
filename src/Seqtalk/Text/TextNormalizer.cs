using System.Globalization;
using System.Text;

namespace Seqtalk.Text;

/// <summary>
/// Cleans text the same way for training and for replies, splits it into word tokens and joins
/// reply tokens back into text. Immutable and safe to share between threads.
/// </summary>
/// <remarks>
/// <see cref="Normalize"/> does, in order: replace unpaired surrogates with U+FFFD, lower-case
/// (if asked), compose to Unicode NFC, turn control characters into spaces, apply the
/// <see cref="NormalizationMode"/> rules, collapse every run of whitespace into one space and trim.
/// Its output never contains a line break, a tab or a control character, and never two spaces in
/// a row. Any string is accepted; nothing throws on unusual input.
/// </remarks>
public sealed class TextNormalizer
{
    private readonly bool tutorial;

    /// <summary>Creates a normalizer.</summary>
    /// <param name="options">The settings; <see langword="null"/> means the defaults.</param>
    public TextNormalizer(TextNormalizerOptions? options = null)
    {
        Options = options ?? new TextNormalizerOptions();
        tutorial = Options.Mode == NormalizationMode.Tutorial;
    }

    /// <summary>The settings this normalizer was created with.</summary>
    public TextNormalizerOptions Options { get; }

    /// <summary>Cleans <paramref name="text"/>: NFC, optional lower-casing, the mode's rules, one space between words, no leading or trailing space.</summary>
    /// <param name="text">Any text.</param>
    /// <returns>The normalized text; empty when nothing but whitespace (or, in tutorial mode, punctuation) was given.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    /// <example><c>"  하루가\t또   가네요. "</c> becomes <c>"하루가 또 가네요."</c>, or <c>"하루가 또 가네요"</c> in tutorial mode.</example>
    public string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = ReplaceUnpairedSurrogates(text);
        if (Options.Lowercase) s = s.ToLowerInvariant();
        s = s.Normalize(NormalizationForm.FormC);

        var result = new StringBuilder(s.Length);
        bool pendingSpace = false;
        for (int i = 0; i < s.Length;)
        {
            Rune r = Rune.GetRuneAt(s, i);
            int n = r.Utf16SequenceLength;
            bool space = Rune.IsWhiteSpace(r) || Rune.IsControl(r) || (tutorial && !IsTutorialWordRune(r));
            if (space)
            {
                pendingSpace = result.Length > 0;
            }
            else
            {
                if (pendingSpace) result.Append(' ');
                pendingSpace = false;
                result.Append(s, i, n);
            }
            i += n;
        }
        return result.ToString();
    }

    /// <summary>
    /// Normalizes <paramref name="text"/> and splits it into word tokens. In tutorial mode the tokens
    /// are the space-separated words. In default mode every punctuation or symbol character is also
    /// a token of its own (an apostrophe between two Latin letters stays inside the word: <c>don't</c>).
    /// </summary>
    /// <param name="text">Any text.</param>
    /// <returns>The tokens, none empty and none containing a space.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is <see langword="null"/>.</exception>
    /// <example><c>"하루가 또 가네요."</c> gives <c>하루가 | 또 | 가네요 | .</c>.</example>
    public IReadOnlyList<string> SplitWords(string text)
    {
        string s = Normalize(text);
        var tokens = new List<string>();
        if (s.Length == 0) return tokens;
        if (tutorial)
        {
            tokens.AddRange(s.Split(' '));
            return tokens;
        }

        int wordStart = -1;
        for (int i = 0; i < s.Length;)
        {
            Rune r = Rune.GetRuneAt(s, i);
            int n = r.Utf16SequenceLength;
            if (r.Value == ' ')
            {
                Flush(s, tokens, ref wordStart, i);
            }
            else if (IsSplitRune(r) && !IsWordApostrophe(s, i, r, wordStart))
            {
                Flush(s, tokens, ref wordStart, i);
                tokens.Add(s.Substring(i, n));
            }
            else if (wordStart < 0)
            {
                wordStart = i;
            }
            i += n;
        }
        Flush(s, tokens, ref wordStart, s.Length);
        return tokens;
    }

    /// <summary>
    /// Joins word tokens into text, the inverse of <see cref="SplitWords"/> for ordinary text. In
    /// tutorial mode: one space between tokens. In default mode: one space between tokens, except before closing punctuation (<c>. , ? ! ) ] } … : ; % ~</c> and
    /// their full-width forms), after opening brackets (<c>( [ {</c> and full-width forms), and
    /// inside a pair of straight quotes (<c>"</c> or <c>'</c>).
    /// </summary>
    /// <param name="tokens">Word tokens; empty ones are ignored.</param>
    /// <returns>The text.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="tokens"/> is <see langword="null"/>.</exception>
    /// <example><c>하루가 | 또 | 가네요 | .</c> gives <c>"하루가 또 가네요."</c>.</example>
    public string JoinWords(IEnumerable<string> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var result = new StringBuilder();
        var joiner = new TokenJoiner(tutorial ? JoinRule.Spaces : JoinRule.Punctuation);
        foreach (string token in tokens)
        {
            if (string.IsNullOrEmpty(token)) continue;
            if (joiner.SpaceBefore(token)) result.Append(' ');
            result.Append(token);
            joiner.Commit(token);
        }
        return result.ToString();
    }

    /// <summary>
    /// Whether <paramref name="token"/> is something a normalizer can emit as a token: not empty,
    /// no control characters, no unpaired surrogates, no whitespace except the single-space token
    /// of the character tokenizer, and in NFC. Used to reject corrupt vocabulary files.
    /// </summary>
    internal static bool IsEmittable(string token, out string reason)
    {
        if (token.Length == 0) { reason = "the token is empty"; return false; }
        if (token == " ") { reason = ""; return true; }
        for (int i = 0; i < token.Length;)
        {
            if (Rune.DecodeFromUtf16(token.AsSpan(i), out Rune r, out int n) != System.Buffers.OperationStatus.Done)
            {
                reason = $"it has an unpaired surrogate at character {i + 1}";
                return false;
            }
            if (Rune.IsControl(r) || Rune.IsWhiteSpace(r))
            {
                reason = $"it contains whitespace or control character U+{r.Value:X4}";
                return false;
            }
            i += n;
        }
        if (!token.IsNormalized(NormalizationForm.FormC)) { reason = "it is not in Unicode NFC form"; return false; }
        reason = "";
        return true;
    }

    /// <summary>Letters, combining marks, digits and the underscore survive tutorial cleaning.</summary>
    private static bool IsTutorialWordRune(Rune r)
    {
        if (r.Value == '_') return true;
        return Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
            _ => false,
        };
    }

    /// <summary>Punctuation (except connectors such as <c>_</c>) and symbols are tokens of their own in default mode.</summary>
    private static bool IsSplitRune(Rune r) => Rune.GetUnicodeCategory(r) switch
    {
        UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation
            or UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
            or UnicodeCategory.OtherSymbol => true,
        _ => false,
    };

    /// <summary>An apostrophe with a Latin letter right before it (inside the current word) and right after it.</summary>
    private static bool IsWordApostrophe(string s, int i, Rune r, int wordStart)
    {
        if (r.Value is not ('\'' or '\u2019') || wordStart < 0 || i + 1 >= s.Length) return false;
        return IsLatinLetter(Rune.GetRuneAt(s, i - 1 >= 0 && char.IsLowSurrogate(s[i - 1]) ? i - 2 : i - 1))
            && IsLatinLetter(Rune.GetRuneAt(s, i + 1));
    }

    private static bool IsLatinLetter(Rune r) => r.Value < 0x250 && Rune.IsLetter(r);

    private static void Flush(string s, List<string> tokens, ref int wordStart, int end)
    {
        if (wordStart < 0) return;
        tokens.Add(s[wordStart..end]);
        wordStart = -1;
    }

    private static string ReplaceUnpairedSurrogates(string text)
    {
        StringBuilder? fixedText = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) { fixedText?.Append(c); continue; }
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                fixedText?.Append(c).Append(text[i + 1]);
                i++;
                continue;
            }
            fixedText ??= new StringBuilder(text.Length).Append(text, 0, i);
            fixedText.Append('\uFFFD');
        }
        return fixedText?.ToString() ?? text;
    }
}

/// <summary>How <see cref="TokenJoiner"/> puts spaces between tokens.</summary>
internal enum JoinRule
{
    /// <summary>Never (characters: the space is a token).</summary>
    None,
    /// <summary>Always one (tutorial-mode words: no punctuation is left).</summary>
    Spaces,
    /// <summary>One, except around punctuation (default-mode words).</summary>
    Punctuation,
}

/// <summary>
/// Decides where spaces go when word tokens are joined (see <see cref="TextNormalizer.JoinWords"/>).
/// The decision for a token depends only on the tokens already written, so a decoder can write
/// token by token into a fixed buffer and stop anywhere.
/// </summary>
internal struct TokenJoiner(JoinRule rule)
{
    private const string Closing = ".,?!)]}…:;%~。、，．！？：；）］｝」』】〕〉》";
    private const string Opening = "([{（［｛「『【〔〈《";

    private bool started;
    private bool afterOpening;
    private bool doubleQuoteOpen;
    private bool singleQuoteOpen;

    /// <summary>Whether a space goes before <paramref name="token"/>, given what was written so far.</summary>
    public readonly bool SpaceBefore(string token)
    {
        if (rule == JoinRule.None || !started) return false;
        if (rule == JoinRule.Spaces) return true;
        if (afterOpening) return false;
        if (token == "\"") return !doubleQuoteOpen;
        if (token == "'") return !singleQuoteOpen;
        return !IsMadeOf(token, Closing);
    }

    /// <summary>Records that <paramref name="token"/> was written.</summary>
    public void Commit(string token)
    {
        started = true;
        if (token == "\"") { doubleQuoteOpen = !doubleQuoteOpen; afterOpening = doubleQuoteOpen; }
        else if (token == "'") { singleQuoteOpen = !singleQuoteOpen; afterOpening = singleQuoteOpen; }
        else afterOpening = IsMadeOf(token, Opening);
    }

    private static bool IsMadeOf(string token, string set)
    {
        foreach (char c in token)
        {
            if (!set.Contains(c, StringComparison.Ordinal)) return false;
        }
        return token.Length > 0;
    }
}
