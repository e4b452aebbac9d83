using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace Seqtalk.Server.Tests;

/// <summary>The wire format of each endpoint, read as raw HTTP.</summary>
[Collection(ServerCollection.Name)]
public sealed class EndpointTests(ServerFixture fixture)
{
    private HttpClient Http => fixture.Server.Http;

    [Fact]
    public async Task Reply_ReturnsReplyTokensAndMs()
    {
        string question = fixture.Questions[0];
        using var response = await Http.PostAsJsonAsync("/v1/reply", new { text = question });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = json.RootElement;
        string reply = root.GetProperty("reply").GetString()!;
        Assert.Equal(fixture.Model.Reply(question), reply);
        Assert.Equal(fixture.Model.ReplyDetailed(question).Tokens.Count, root.GetProperty("tokens").GetInt32());   // model tokens
        Assert.False(root.TryGetProperty("nbest", out _));
        Assert.True(root.GetProperty("ms").GetDouble() >= 0);

        using var capped = await Http.PostAsJsonAsync("/v1/reply", new { text = question, max_length = 1 });
        using var cappedJson = JsonDocument.Parse(await capped.Content.ReadAsStringAsync());
        Assert.Equal(fixture.Model.Reply(question, new Decoding.DecodeOptions { MaxLength = 1 }), cappedJson.RootElement.GetProperty("reply").GetString());
    }

    [Fact]
    public async Task ChatCompletion_HasOpenAisShape_AndTemperatureZeroIsTheGreedyReply()
    {
        string question = fixture.Questions[4];
        var body = new
        {
            model = ServerFixture.ModelName,
            temperature = 0,
            seed = 3,
            n = 2,
            messages = new object[]
            {
                new { role = "system", content = "be nice" },
                new { role = "user", content = "an earlier question" },
                new { role = "assistant", content = "an earlier answer" },
                new { role = "user", content = new object[] { new { type = "text", text = question } } },
            },
        };
        using var response = await Http.PostAsJsonAsync("/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = json.RootElement;
        Assert.StartsWith("chatcmpl-", root.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("chat.completion", root.GetProperty("object").GetString());
        Assert.Equal(ServerFixture.ModelName, root.GetProperty("model").GetString());
        Assert.True(root.GetProperty("created").GetInt64() > 1_600_000_000);
        var choices = root.GetProperty("choices");
        Assert.Equal(2, choices.GetArrayLength());
        string expected = fixture.Model.Reply(question);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(i, choices[i].GetProperty("index").GetInt32());
            Assert.Equal("assistant", choices[i].GetProperty("message").GetProperty("role").GetString());
            Assert.Equal(expected, choices[i].GetProperty("message").GetProperty("content").GetString());
            Assert.Contains(choices[i].GetProperty("finish_reason").GetString(), new[] { "stop", "length" });
        }
        var usage = root.GetProperty("usage");
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + usage.GetProperty("completion_tokens").GetInt32(), usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Streaming_SendsSseChunksThatConcatenateToTheReply_EndingWithDone()
    {
        foreach (string question in fixture.Questions.Take(6))
        {
            var body = new { messages = new[] { new { role = "user", content = question } }, stream = true, stream_options = new { include_usage = true } };
            using var response = await Http.PostAsJsonAsync("/v1/chat/completions", body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
            string text = await response.Content.ReadAsStringAsync();

            var events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.All(events, e => Assert.StartsWith("data: ", e, StringComparison.Ordinal));
            Assert.Equal("data: [DONE]", events[^1]);
            var content = new StringBuilder();
            string? finish = null;
            JsonElement? usage = null;
            foreach (string e in events[..^1])
            {
                using var chunk = JsonDocument.Parse(e["data: ".Length..]);
                Assert.Equal("chat.completion.chunk", chunk.RootElement.GetProperty("object").GetString());
                var choices = chunk.RootElement.GetProperty("choices");
                if (choices.GetArrayLength() == 0) { usage = chunk.RootElement.GetProperty("usage").Clone(); continue; }
                var delta = choices[0].GetProperty("delta");
                if (delta.TryGetProperty("content", out var piece)) content.Append(piece.GetString());
                if (choices[0].GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = choices[0].GetProperty("finish_reason").GetString();
            }
            Assert.Equal(fixture.Model.Reply(question), content.ToString());
            Assert.NotNull(finish);
            Assert.NotNull(usage);
        }
    }

    [Fact]
    public async Task ModelsHealthAndReadiness_DescribeTheServer()
    {
        using var models = JsonDocument.Parse(await Http.GetStringAsync("/v1/models"));
        Assert.Equal("list", models.RootElement.GetProperty("object").GetString());
        Assert.Equal(ServerFixture.ModelName, models.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
        using var model = JsonDocument.Parse(await Http.GetStringAsync("/v1/models/" + ServerFixture.ModelName));
        Assert.Equal("model", model.RootElement.GetProperty("object").GetString());

        using var health = JsonDocument.Parse(await Http.GetStringAsync("/healthz"));
        Assert.Equal("ok", health.RootElement.GetProperty("status").GetString());
        Assert.Equal(ServerFixture.ModelName, health.RootElement.GetProperty("model").GetString());
        Assert.False(string.IsNullOrEmpty(health.RootElement.GetProperty("version").GetString()));

        using var ready = await Http.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task Metrics_ArePrometheusText_WithRoutesStatusesLatencyBatchesAndTokens()
    {
        await fixture.Server.ReplyAsync(fixture.Questions[0]);
        using var response = await Http.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        string text = await response.Content.ReadAsStringAsync();
        foreach (string family in new[] { "seqtalk_http_requests_total", "seqtalk_http_request_duration_seconds", "seqtalk_batch_size", "seqtalk_generated_tokens_total", "seqtalk_queue_length" })
            Assert.Contains("# TYPE " + family + " ", text, StringComparison.Ordinal);
        var samples = await fixture.Server.MetricsAsync();
        Assert.True(samples["seqtalk_http_requests_total{route=\"/v1/reply\",status=\"200\"}"] >= 1);
        Assert.True(samples["seqtalk_http_request_duration_seconds_count{route=\"/v1/reply\"}"] >= 1);
        Assert.Equal(samples["seqtalk_http_request_duration_seconds_count{route=\"/v1/reply\"}"],
            samples["seqtalk_http_request_duration_seconds_bucket{route=\"/v1/reply\",le=\"+Inf\"}"]);
        Assert.True(samples["seqtalk_batch_size_count"] >= 1);
    }

    [Fact]
    public async Task ChatPage_IsOneSelfContainedHtmlFile()
    {
        using var response = await Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        string html = await response.Content.ReadAsStringAsync();
        Assert.Contains("<textarea", html, StringComparison.Ordinal);
        Assert.DoesNotContain("http://", html, StringComparison.Ordinal);   // no CDN, no external fonts
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
        Assert.Contains("default-src 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }
}
