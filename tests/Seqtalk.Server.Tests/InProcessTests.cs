using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Seqtalk.Extensions.AI;
using Seqtalk.Server;

namespace Seqtalk.Server.Tests;

/// <summary>The IChatClient over a ChatModel, the options record, and how replies are cut into stream pieces.</summary>
[Collection(ServerCollection.Name)]
public sealed class InProcessTests(ServerFixture fixture)
{
    [Fact]
    public async Task SeqtalkChatClient_RepliesLikeTheModel_PlainAndStreaming()
    {
        using IChatClient client = new SeqtalkChatClient(fixture.Model, ServerFixture.ModelName);
        foreach (string question in fixture.Questions.Take(6))
        {
            string expected = fixture.Model.Reply(question);
            var response = await client.GetResponseAsync([new ChatMessage(ChatRole.System, "x"), new ChatMessage(ChatRole.User, question)]);
            Assert.Equal(expected, response.Text);
            Assert.Equal(ServerFixture.ModelName, response.ModelId);
            Assert.Equal(ChatFinishReason.Stop, response.FinishReason);

            var text = new StringBuilder();
            await foreach (var update in client.GetStreamingResponseAsync(question)) text.Append(update.Text);
            Assert.Equal(expected, text.ToString());
        }

        var capped = await client.GetResponseAsync(fixture.Questions[0], new ChatOptions { MaxOutputTokens = 1 });
        Assert.Equal(fixture.Model.Reply(fixture.Questions[0], new Decoding.DecodeOptions { MaxLength = 1 }), capped.Text);
        Assert.Equal(ChatFinishReason.Length, capped.FinishReason);

        // A positive temperature samples; TopP, TopK and Seed map onto the library's options, usage counts model tokens.
        string sampledQuestion = fixture.Questions[2];
        var sampling = new ChatOptions { Temperature = 1.5f, TopK = 3, TopP = 0.75f, Seed = 4 };
        var expectedSample = fixture.Model.ReplyDetailed(sampledQuestion, new Decoding.DecodeOptions { Temperature = 1.5, TopK = 3, TopP = 0.75f, Seed = 4 });
        var sampled = await client.GetResponseAsync(sampledQuestion, sampling);
        Assert.Equal(expectedSample.Text, sampled.Text);
        Assert.Equal(expectedSample.Tokens.Count, sampled.Usage!.OutputTokenCount);
        Assert.Equal(fixture.Model.CountQuestionTokens(sampledQuestion), sampled.Usage.InputTokenCount);
        var streamed = new StringBuilder();
        await foreach (var update in client.GetStreamingResponseAsync(sampledQuestion, sampling)) streamed.Append(update.Text);
        Assert.Equal(expectedSample.Text, streamed.ToString());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.GetResponseAsync("hi", new ChatOptions { Temperature = 0.5f, TopP = 0 }));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.System, "no user")]));
        Assert.Equal(ServerFixture.ModelName, client.GetService<ChatClientMetadata>()?.DefaultModelId);
        Assert.Same(fixture.Model, client.GetService<ChatModel>());
    }

    [Fact]
    public async Task AddSeqtalkChatClient_RegistersTheModelAndTheClient()
    {
        using var services = new ServiceCollection().AddSeqtalkChatClient(fixture.Model).BuildServiceProvider();
        Assert.Same(fixture.Model, services.GetRequiredService<ChatModel>());
        var client = services.GetRequiredService<IChatClient>();
        Assert.IsType<SeqtalkChatClient>(client);
        Assert.Equal(fixture.Model.Reply(fixture.Questions[2]), (await client.GetResponseAsync(fixture.Questions[2])).Text);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("민수님, 좋은 일이 있었나 봐요!")]
    [InlineData("  leading and  double  spaces ")]
    [InlineData("line\nbreak\t tab")]
    public void ReplyPieces_ConcatenateToTheText_OneWordEach(string text)
    {
        var pieces = ReplyPieces.Split(text);
        Assert.Equal(text, string.Concat(pieces));
        Assert.Equal(text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length, ReplyPieces.CountTokens(text));
        Assert.True(pieces.Count <= Math.Max(1, ReplyPieces.CountTokens(text)));
    }

    [Fact]
    public void ServerOptions_DefaultsAreValid_AndValidateNamesTheBadProperty()
    {
        var defaults = new ServerOptions();
        defaults.Validate();
        Assert.Equal("http://127.0.0.1:8080", defaults.Urls);
        Assert.Equal((1000, 100, 32, 0, 256, 30, false), (defaults.MaxInputChars, defaults.MaxOutputTokens, defaults.MaxBatchSize,
            defaults.MaxBatchWaitMs, defaults.QueueCapacity, defaults.RequestTimeoutSeconds, defaults.LogUserText));

        foreach (var (bad, name) in new (ServerOptions, string)[]
        {
            (defaults with { Urls = " " }, nameof(ServerOptions.Urls)),
            (defaults with { MaxInputChars = 0 }, nameof(ServerOptions.MaxInputChars)),
            (defaults with { MaxOutputTokens = 0 }, nameof(ServerOptions.MaxOutputTokens)),
            (defaults with { MaxBatchSize = 0 }, nameof(ServerOptions.MaxBatchSize)),
            (defaults with { MaxBatchWaitMs = -1 }, nameof(ServerOptions.MaxBatchWaitMs)),
            (defaults with { QueueCapacity = 0 }, nameof(ServerOptions.QueueCapacity)),
            (defaults with { RequestTimeoutSeconds = 0 }, nameof(ServerOptions.RequestTimeoutSeconds)),
            (defaults with { MaxRequestBytes = 10 }, nameof(ServerOptions.MaxRequestBytes)),
        })
        {
            Assert.Equal(name, Assert.Throws<ArgumentOutOfRangeException>(bad.Validate).ParamName);
            Assert.Throws<ArgumentOutOfRangeException>(() => SeqtalkServer.Build(fixture.Model, bad, "x"));
        }
        Assert.Null((defaults with { ApiKey = "" }).ResolveApiKey());
        Assert.Equal("k", (defaults with { ApiKey = "k" }).ResolveApiKey());
    }
}
