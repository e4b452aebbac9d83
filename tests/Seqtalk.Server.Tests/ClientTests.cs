using System.ClientModel;
using System.Text;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Seqtalk.Server;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using AiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace Seqtalk.Server.Tests;

/// <summary>Clients nobody here wrote, against the real server: each must get exactly the library's reply.</summary>
[Collection(ServerCollection.Name)]
public sealed class ClientTests(ServerFixture fixture)
{
    private ChatClient OpenAiChat(ServerHost server, string key = "no-key-needed")
        => new(ServerFixture.ModelName, new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "v1") });

    [Fact]
    public async Task OfficialOpenAiClient_GetsTheLibrarysReply()
    {
        var chat = OpenAiChat(fixture.Server);
        foreach (string question in fixture.Questions)
        {
            ChatCompletion completion = (await chat.CompleteChatAsync(
                [new SystemChatMessage("ignored by the model"), new UserChatMessage(question)])).Value;
            Assert.Equal(fixture.Model.Reply(question), string.Concat(completion.Content.Select(p => p.Text)));
            Assert.Equal(ChatMessageRole.Assistant, completion.Role);
            Assert.Equal(ServerFixture.ModelName, completion.Model);
            Assert.True(completion.Usage.TotalTokenCount == completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount);
        }
    }

    [Fact]
    public async Task OfficialOpenAiClient_Streaming_ConcatenatesToTheReply()
    {
        var chat = OpenAiChat(fixture.Server);
        foreach (string question in fixture.Questions.Take(8))
        {
            var text = new StringBuilder();
            OpenAI.Chat.ChatFinishReason? finish = null;
            ChatTokenUsage? usage = null;
            await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(question)]))
            {
                foreach (var part in update.ContentUpdate) text.Append(part.Text);
                finish ??= update.FinishReason;
                usage ??= update.Usage;
            }
            Assert.Equal(fixture.Model.Reply(question), text.ToString());
            Assert.NotNull(finish);
            Assert.NotNull(usage); // the client asks for usage in the stream (stream_options.include_usage)
        }
    }

    [Fact]
    public async Task MicrosoftExtensionsAiOpenAiClient_PlainAndStreaming_GetTheLibrarysReply()
    {
        using IChatClient chat = OpenAiChat(fixture.Server).AsIChatClient();
        foreach (string question in fixture.Questions.Take(8))
        {
            string expected = fixture.Model.Reply(question);
            var response = await chat.GetResponseAsync([new AiChatMessage(AiChatRole.User, question)], new ChatOptions { Temperature = 0 });
            Assert.Equal(expected, response.Text);

            var text = new StringBuilder();
            await foreach (var update in chat.GetStreamingResponseAsync(question)) text.Append(update.Text);
            Assert.Equal(expected, text.ToString());
        }
    }

    [Fact]
    public async Task OfficialOpenAiClient_WithAnApiKey_NeedsTheRightOne()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { ApiKey = "s3cret" });
        string question = fixture.Questions[0];

        var right = (await OpenAiChat(server, "s3cret").CompleteChatAsync([new UserChatMessage(question)])).Value;
        Assert.Equal(fixture.Model.Reply(question), string.Concat(right.Content.Select(p => p.Text)));

        var wrong = await Assert.ThrowsAsync<ClientResultException>(() => OpenAiChat(server, "guess").CompleteChatAsync([new UserChatMessage(question)]));
        Assert.Equal(401, wrong.Status);
    }

    [Fact]
    public async Task OfficialOpenAiClient_PositiveTemperature_Samples()
    {
        var chat = OpenAiChat(fixture.Server);
        string question = fixture.Questions[0];
        var sampled = (await chat.CompleteChatAsync([new UserChatMessage(question)], new ChatCompletionOptions { Temperature = 1.9f, TopP = 0.5f })).Value;
        string text = string.Concat(sampled.Content.Select(p => p.Text));
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Stop, sampled.FinishReason);
        Assert.True(sampled.Usage.OutputTokenCount == fixture.Model.CountReplyTokens(text), $"usage {sampled.Usage.OutputTokenCount} for '{text}'");
        Assert.Equal(fixture.Model.CountQuestionTokens(question), sampled.Usage.InputTokenCount);
    }
}
