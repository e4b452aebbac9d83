using System.Buffers;
using Seqtalk.Text;
using Xunit.Abstractions;

namespace Seqtalk.Tests.Text;

/// <summary>Round trips, token counts and span decoding over the real corpus and hostile input.</summary>
public class TokenizerInvariantTests(ITestOutputHelper output)
{
    private static readonly TextNormalizerOptions TutorialOptions = new() { Mode = NormalizationMode.Tutorial };
    private static readonly Lazy<Tokenizer[]> QuestionTokenizers = new(() =>
    [
        WordTokenizer.Train(ChatbotData.Questions),
        WordTokenizer.Train(ChatbotData.Questions, new WordTokenizerOptions { Normalizer = TutorialOptions }),
        CharTokenizer.Train(ChatbotData.Questions),
        CharTokenizer.Train(ChatbotData.Questions, new CharTokenizerOptions { Normalizer = TutorialOptions }),
    ]);

    public static TheoryData<int> TokenizerIndexes() => [0, 1, 2, 3];

    [Theory]
    [MemberData(nameof(TokenizerIndexes))]
    public void DecodeOfEncode_GivesTheNormalizedText_OverTheQuestions(int which)
    {
        var tokenizer = QuestionTokenizers.Value[which];
        var normalizer = tokenizer.Normalizer;
        bool exact = tokenizer.Kind == TokenizerKind.Character || normalizer.Options.Mode == NormalizationMode.Tutorial;
        int roundTrips = 0;
        var failures = new List<string>();
        foreach (string q in ChatbotData.Questions)
        {
            var ids = tokenizer.EncodeToIds(q);
            Assert.DoesNotContain(SpecialTokens.UnknownId, ids);   // every token was seen in training
            Assert.Equal(ids.Count, tokenizer.CountTokens(q));
            string decoded = tokenizer.Decode(ids);
            string normalized = normalizer.Normalize(q);
            if (exact)
            {
                Assert.Equal(normalized, decoded);
            }
            else
            {
                // Words with punctuation: decode is JoinWords of the split, which is the normalized text for ordinary text.
                Assert.Equal(normalizer.JoinWords(normalizer.SplitWords(q)), decoded);
                if (decoded == normalized) roundTrips++;
                else if (failures.Count < 12) failures.Add(normalized);
            }
        }
        if (!exact)
        {
            double share = (double)roundTrips / ChatbotData.Questions.Count;
            output.WriteLine($"{roundTrips} of {ChatbotData.Questions.Count} questions round-trip ({share:P3}); first failures: {string.Join(" | ", failures)}");
            // Measured: 11,730 of 11,823 (99.213 %). Questions are typed by users: "싶어.엉엉", "마지막밤 . 더", "15%야".
            Assert.True(share >= 0.99, $"only {share:P2} of the questions round-trip");
        }
    }

    [Theory]
    [MemberData(nameof(TokenizerIndexes))]
    public void HostileInput_NeverCrashes(int which)
    {
        var tokenizer = QuestionTokenizers.Value[which];
        var inputs = TextNormalizerTests.HostileStrings.ToList();
        inputs.Add(string.Concat(Enumerable.Repeat("오늘 날씨 어때? 😊\n", 60_000)));   // ~1 MB
        inputs.Add(new string('가', 1 << 20));
        foreach (string input in inputs)
        {
            var ids = tokenizer.EncodeToIds(input);
            Assert.Equal(ids.Count, tokenizer.CountTokens(input));
            Assert.All(ids, id => Assert.InRange(id, SpecialTokens.UnknownId, tokenizer.Vocabulary.Count - 1));
            Assert.DoesNotContain(SpecialTokens.StartId, ids);
            Assert.DoesNotContain(SpecialTokens.EndId, ids);
            Assert.DoesNotContain(SpecialTokens.PadId, ids);
            TextNormalizerTests.AssertClean(tokenizer.Decode(ids));
        }
        Assert.Empty(tokenizer.EncodeToIds(""));
        Assert.Empty(tokenizer.EncodeToIds(" \t\r\n"));
    }

    [Theory]
    [MemberData(nameof(TokenizerIndexes))]
    public void SpanDecode_GrowingDestinations_MakeMonotoneProgressThenFinish(int which)
    {
        var tokenizer = QuestionTokenizers.Value[which];
        foreach (string q in new[] { ChatbotData.Questions[0], "(정말?) \"그래\" 라고 했어... 외계어!", ChatbotData.Questions[^1] })
        {
            var ids = new List<int> { SpecialTokens.StartId };
            ids.AddRange(tokenizer.EncodeToIds(q));
            ids.Insert(ids.Count / 2, SpecialTokens.PadId);
            ids.Add(SpecialTokens.EndId);
            ids.Add(tokenizer.Vocabulary.Count - 1);   // after </s>: ignored
            string full = tokenizer.Decode(ids);
            Assert.NotEmpty(full);

            int lastConsumed = 0, lastWritten = 0;
            for (int size = 0; ; size++)
            {
                var destination = new char[size];
                var status = tokenizer.Decode(ids, destination, out int consumed, out int written);
                Assert.True(consumed >= lastConsumed && written >= lastWritten, $"progress went back at size {size}");
                Assert.Equal(full[..written], new string(destination, 0, written));
                lastConsumed = consumed;
                lastWritten = written;
                if (size < full.Length)
                {
                    Assert.Equal(OperationStatus.DestinationTooSmall, status);
                    Assert.True(consumed < ids.Count - 1);
                }
                else
                {
                    Assert.Equal(OperationStatus.Done, status);
                    Assert.Equal(full.Length, written);
                    Assert.Equal(ids.Count - 1, consumed);   // everything up to and including </s>
                    break;
                }
            }
        }
    }
}
