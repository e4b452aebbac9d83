using System.Text;
using Seqtalk.Text;

namespace Seqtalk.Tests.Text;

public class VocabularyTests
{
    [Fact]
    public void SaveLoad_RoundTrips_WordAndCharacterVocabularies()
    {
        foreach (Tokenizer tokenizer in new Tokenizer[] { WordTokenizer.Train(["하루가 또 가네요.", "Hello, 😊 world!"]), CharTokenizer.Train(["하루가 또 가네요.", "Hello, 😊"]) })
        {
            var writer = new StringWriter();
            tokenizer.Vocabulary.Save(writer);
            string text = writer.ToString();
            Assert.StartsWith("<pad>\n<unk>\n<s>\n</s>\n", text, StringComparison.Ordinal);
            Assert.EndsWith("\n", text, StringComparison.Ordinal);
            Assert.Equal(tokenizer.Vocabulary.Count, text.Count(c => c == '\n'));
            var loaded = Vocabulary.Load(new StringReader(text));
            Assert.Equal(tokenizer.Vocabulary.Count, loaded.Count);
            for (int id = 0; id < loaded.Count; id++)
            {
                Assert.Equal(tokenizer.Vocabulary.GetToken(id), loaded.GetToken(id));
                Assert.Equal(id, loaded.GetId(loaded.GetToken(id)));
            }
        }
    }

    [Fact]
    public void CharacterVocabulary_KeepsTheSpaceToken()
    {
        var tokenizer = CharTokenizer.Train(["가 나"]);
        var writer = new StringWriter();
        tokenizer.Vocabulary.Save(writer);
        Assert.Equal("<pad>\n<unk>\n<s>\n</s>\n가\n \n나\n", writer.ToString());
        Assert.Equal(5, Vocabulary.Load(new StringReader(writer.ToString())).GetId(" "));
    }

    [Fact]
    public void TokenizerSave_WritesUtf8WithoutBom_AndLoadsBack()
    {
        string dir = Path.Combine(Path.GetTempPath(), "seqtalk-text-" + Guid.NewGuid().ToString("N"));
        try
        {
            var tokenizer = WordTokenizer.Train(["하루가 또 가네요."]);
            tokenizer.Save(dir, "target");
            string path = Path.Combine(dir, "target.vocab.txt");
            byte[] bytes = File.ReadAllBytes(path);
            Assert.Equal("<pad>\n<unk>\n<s>\n</s>\n하루가\n또\n가네요\n.\n", new UTF8Encoding(false, true).GetString(bytes));
            Assert.NotEqual(0xEF, bytes[0]);
            Assert.Single(Directory.GetFiles(dir));   // no temporary file left behind
            using var reader = new StreamReader(path, Encoding.UTF8);
            var loaded = WordTokenizer.Create(Vocabulary.Load(reader), new TextNormalizerOptions());
            Assert.Equal(tokenizer.EncodeToIds("하루가 또 가네요!"), loaded.EncodeToIds("하루가 또 가네요!"));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Load_ToleratesCrLfAndABom()
    {
        var v = Vocabulary.Load(new StringReader("\uFEFF<pad>\r\n<unk>\r\n<s>\r\n</s>\r\n가\r\n"));
        Assert.Equal(5, v.Count);
        Assert.Equal(4, v.GetId("가"));
    }

    [Theory]
    [InlineData("", "0 lines")]
    [InlineData("<pad>\n<unk>\n", "2 lines")]
    [InlineData("<unk>\n<pad>\n<s>\n</s>\n", "line 1: expected the special token <pad>")]
    [InlineData("<pad>\n<unk>\n<start>\n</s>\n", "line 3: expected the special token <s>")]
    [InlineData("<pad>\n<unk>\n<s>\n</s>\n가\n나\n가\n", "line 7: duplicate token '가' (first on line 5)")]
    [InlineData("<pad>\n<unk>\n<s>\n</s>\n가\n<s>\n", "line 6: the special token <s> may only be on line 3")]
    [InlineData("<pad>\n<unk>\n<s>\n</s>\n가\n\n나\n", "line 6: invalid token '': the token is empty")]
    [InlineData("<pad>\n<unk>\n<s>\n</s>\n가 나\n", "line 5: invalid token")]
    [InlineData("<pad>\n<unk>\n<s>\n</s>\na\tb\n", "line 5: invalid token")]
    [InlineData("<pad>\n<unk>\n<s>\n</s>\n가\n\u1100\u1161\n", "line 6: invalid token")]   // decomposed: not NFC
    public void Load_CorruptFile_ThrowsNamingTheLine(string text, string expected)
    {
        var e = Assert.Throws<SeqtalkException>(() => Vocabulary.Load(new StringReader(text)));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Load_UnpairedSurrogate_ThrowsNamingTheLine()
    {
        // Not an InlineData: xUnit's serialization of theory data would replace the lone surrogate.
        var e = Assert.Throws<SeqtalkException>(() => Vocabulary.Load(new StringReader("<pad>\n<unk>\n<s>\n</s>\nok\na\uD83D\n")));
        Assert.Contains("line 6: invalid token", e.Message, StringComparison.Ordinal);
        Assert.Contains("unpaired surrogate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetId_UnknownTokenIsUnk_GetTokenOutOfRangeThrows()
    {
        var v = Vocabulary.Load(new StringReader("<pad>\n<unk>\n<s>\n</s>\n가\n"));
        Assert.Equal(SpecialTokens.UnknownId, v.GetId("없음"));
        Assert.False(v.TryGetId("없음", out int id));
        Assert.Equal(SpecialTokens.UnknownId, id);
        Assert.Equal(SpecialTokens.StartId, v.GetId(SpecialTokens.Start));   // the map itself knows the specials
        Assert.Throws<ArgumentOutOfRangeException>(() => v.GetToken(5));
        Assert.Throws<ArgumentOutOfRangeException>(() => v.GetToken(-1));
    }
}
