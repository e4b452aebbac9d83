using Seqtalk.Text;

namespace Seqtalk.Tests.Text;

/// <summary><see cref="Tokenizer.EncodeToPieces"/>: the ids of <see cref="Tokenizer.EncodeToIds"/>, each with the text it was looked up from.</summary>
public class TokenizerPiecesTests
{
    private static readonly TextNormalizerOptions TutorialOptions = new() { Mode = NormalizationMode.Tutorial };

    // Trained on the questions and run over the answers, so the answers hold words and characters the vocabularies lack.
    private static readonly Lazy<Tokenizer[]> Tokenizers = new(() =>
    [
        WordTokenizer.Train(ChatbotData.Questions),
        WordTokenizer.Train(ChatbotData.Questions, new WordTokenizerOptions { Normalizer = TutorialOptions, MaxVocabulary = 2000 }),
        CharTokenizer.Train(ChatbotData.Questions, new CharTokenizerOptions { MaxVocabulary = 300 }),
        BpeTokenizer.Train(ChatbotData.Questions.Take(2000), new BpeTokenizerOptions { VocabularySize = 600 }),
    ]);

    public static TheoryData<int> TokenizerIndexes() => [0, 1, 2, 3];

    [Theory]
    [MemberData(nameof(TokenizerIndexes))]
    public void Pieces_AreAlignedWithTheIdsOfEncodeToIds_OverTheAnswers(int which)
    {
        var tokenizer = Tokenizers.Value[which];
        var ids = new List<int>();
        var pieces = new List<string>();
        long unknown = 0;
        foreach (string answer in ChatbotData.Answers)
        {
            ids.Clear();
            pieces.Clear();
            tokenizer.EncodeToPieces(answer, ids, pieces);
            Assert.Equal(tokenizer.EncodeToIds(answer), ids);
            Assert.Equal(ids.Count, pieces.Count);
            switch (tokenizer.Kind)
            {
                case TokenizerKind.Word:
                    Assert.Equal(tokenizer.Normalizer.SplitWords(answer), pieces);
                    break;
                case TokenizerKind.Character:
                    Assert.Equal(tokenizer.Normalizer.Normalize(answer), string.Concat(pieces));
                    Assert.All(pieces, p => Assert.Equal(1, char.IsSurrogatePair(p, 0) ? p.Length - 1 : p.Length));
                    break;
                case TokenizerKind.Bpe:
                    Assert.DoesNotContain(SpecialTokens.UnknownId, ids);
                    break;
            }
            for (int t = 0; t < ids.Count; t++)
            {
                if (ids[t] == SpecialTokens.UnknownId)
                {
                    unknown++;
                    Assert.False(tokenizer.Vocabulary.TryGetId(pieces[t], out _), pieces[t]);
                }
                else
                {
                    Assert.Equal(tokenizer.Vocabulary.GetToken(ids[t]), pieces[t]);
                }
            }
        }
        // The word and character vocabularies miss some of the answers' words and characters, so <unk> pieces were checked.
        if (tokenizer.Kind != TokenizerKind.Bpe) Assert.True(unknown > 100, $"only {unknown} <unk> pieces");
    }

    [Theory]
    [MemberData(nameof(TokenizerIndexes))]
    public void Pieces_OfHostileText_AreAlignedWithTheIdsOfEncodeToIds(int which)
    {
        var tokenizer = Tokenizers.Value[which];
        foreach (string text in TextNormalizerTests.HostileStrings)
        {
            var ids = new List<int>();
            var pieces = new List<string>();
            tokenizer.EncodeToPieces(text, ids, pieces);
            Assert.Equal(tokenizer.EncodeToIds(text), ids);
            Assert.Equal(ids.Count, pieces.Count);
            Assert.All(pieces, p => Assert.False(string.IsNullOrEmpty(p)));
        }
    }
}
