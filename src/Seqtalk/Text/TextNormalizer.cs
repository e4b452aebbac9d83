using System.Buffers;
using System.Globalization;
using System.Text;

namespace Seqtalk.Text;

/// <summary>
/// Cleans text the same way for training and for replies, splits it into word tokens and joins
/// reply tokens back into text. Immutable and safe to share between threads.
/// </summary>
/// <remarks>
/// <see cref="Normalize"/> does, in order: replace unpaired surrogates and noncharacters with U+FFFD, lower-case
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
        string s = ReplaceInvalidCharacters(text);
        if (Options.Lowercase) s = s.ToLowerInvariant();
        s = s.Normalize(NormalizationForm.FormC);
        if (Options.Lowercase)
        {
            // Composition can build a capital that lower-casing left alone: U+0130 (İ, kept by invariant
            // lower-casing) + U+0328 composes to U+012E (Į). Lower-case again so Normalize stays idempotent.
            string lower = s.ToLowerInvariant();
            if (!ReferenceEquals(lower, s) && lower != s) s = lower.Normalize(NormalizationForm.FormC);
        }

        // The output is never longer than s: a run of dropped characters becomes at most one space.
        char[] buffer = ArrayPool<char>.Shared.Rent(Math.Max(s.Length, 1));
        try
        {
            int written = 0;
            bool pendingSpace = false;
            for (int i = 0; i < s.Length;)
            {
                UnicodeCategory category = CategoryAt(s, i, out int n);
                bool space = category is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator
                        or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Control
                    || (tutorial && s[i] != '_' && !IsTutorialWordCategory(category));
                if (space)
                {
                    pendingSpace = written > 0;
                }
                else
                {
                    if (pendingSpace) buffer[written++] = ' ';
                    pendingSpace = false;
                    buffer[written++] = s[i];
                    if (n == 2) buffer[written++] = s[i + 1];
                }
                i += n;
            }
            return written == s.Length && s.AsSpan().SequenceEqual(buffer.AsSpan(0, written)) ? s : new string(buffer, 0, written);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
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
            UnicodeCategory category = CategoryAt(s, i, out int n);
            if (s[i] == ' ')
            {
                Flush(s, tokens, ref wordStart, i);
            }
            else if (IsSplitCategory(category) && !IsWordApostrophe(s, i, wordStart))
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
            if (Rune.DecodeFromUtf16(token.AsSpan(i), out Rune r, out int n) != OperationStatus.Done)
            {
                reason = $"it has an unpaired surrogate at character {i + 1}";
                return false;
            }
            if (Rune.IsControl(r) || Rune.IsWhiteSpace(r))
            {
                reason = $"it contains whitespace or control character U+{r.Value:X4}";
                return false;
            }
            if (IsNoncharacter(r.Value))
            {
                // The normalizer replaces noncharacters, and string.IsNormalized throws on them.
                reason = $"it contains the noncharacter U+{r.Value:X4}";
                return false;
            }
            i += n;
        }
        if (!token.IsNormalized(NormalizationForm.FormC)) { reason = "it is not in Unicode NFC form"; return false; }
        reason = "";
        return true;
    }

    /// <summary>The category of the code point at <paramref name="i"/>, whose surrogates (if any) are paired.</summary>
    private static UnicodeCategory CategoryAt(string s, int i, out int length)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            length = 2;
            return CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, s[i + 1]));
        }
        length = 1;
        return CharUnicodeInfo.GetUnicodeCategory(c);
    }

    /// <summary>Letters, combining marks and digits (and the underscore, checked by the caller) survive tutorial cleaning.</summary>
    private static bool IsTutorialWordCategory(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
        _ => false,
    };

    /// <summary>Punctuation (except connectors such as <c>_</c>) and symbols are tokens of their own in default mode.</summary>
    private static bool IsSplitCategory(UnicodeCategory category) => category switch
    {
        UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation
            or UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
            or UnicodeCategory.OtherSymbol => true,
        _ => false,
    };

    /// <summary>An apostrophe with a Latin letter right before it (inside the current word) and right after it.</summary>
    private static bool IsWordApostrophe(string s, int i, int wordStart) =>
        s[i] is '\'' or '\u2019' && wordStart >= 0 && i + 1 < s.Length
        && IsLatinLetter(s[i - 1]) && IsLatinLetter(s[i + 1]);

    private static bool IsLatinLetter(char c) => c < '\u0250' && char.IsLetter(c);

    private static void Flush(string s, List<string> tokens, ref int wordStart, int end)
    {
        if (wordStart < 0) return;
        tokens.Add(s[wordStart..end]);
        wordStart = -1;
    }

    /// <summary>Replaces unpaired surrogates and Unicode noncharacters (U+FDD0..U+FDEF and U+xFFFE, U+xFFFF in
    /// every plane) with U+FFFD: they are not text, and NFC normalization rejects them.</summary>
    private static string ReplaceInvalidCharacters(string text)
    {
        StringBuilder? fixedText = null;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            int length = 1;
            bool valid;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                length = 2;
                valid = !IsNoncharacter(char.ConvertToUtf32(c, text[i + 1]));
            }
            else
            {
                valid = !char.IsSurrogate(c) && !IsNoncharacter(c);
            }

            if (!valid)
            {
                fixedText ??= new StringBuilder(text.Length).Append(text, 0, i);
                fixedText.Append('\uFFFD');
            }
            else
            {
                fixedText?.Append(text, i, length);
            }
            i += length - 1;
        }
        return fixedText?.ToString() ?? text;
    }

    private static bool IsNoncharacter(int codePoint) => codePoint is >= 0xFDD0 and <= 0xFDEF || (codePoint & 0xFFFE) == 0xFFFE;
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
    private bool afterSingleLatinLetter;

    /// <summary>Whether a space goes before <paramref name="token"/>, given what was written so far.</summary>
    public readonly bool SpaceBefore(string token)
    {
        if (rule == JoinRule.None || !started) return false;
        if (rule == JoinRule.Spaces) return true;
        if (afterOpening) return false;
        if (token == "\"") return !doubleQuoteOpen;
        if (token == "'") return !singleQuoteOpen;
        if (token == "#" && afterSingleLatinLetter) return false;   // C#, F#
        return !IsMadeOf(token, Closing);
    }

    /// <summary>Records that <paramref name="token"/> was written.</summary>
    public void Commit(string token)
    {
        started = true;
        afterSingleLatinLetter = token.Length == 1 && char.IsAsciiLetter(token[0]);
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
