using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Seqtalk.Server;

namespace Seqtalk.Server.Tests;

/// <summary>Every bad request gets the right 4xx with a JSON error in OpenAI's shape, and the server keeps serving.</summary>
[Collection(ServerCollection.Name)]
public sealed class RefusalTests(ServerFixture fixture)
{
    private const string Chat = "/v1/chat/completions";
    private const string Reply = "/v1/reply";

    public static TheoryData<string, string, int, string?> BadRequests() => new()
    {
        // route, body, status, the param the error names (null: none)
        { Reply, "{not json", 400, null },
        { Reply, "", 400, null },
        { Reply, "[1, 2]", 400, null },
        { Reply, "{}", 400, "text" },
        { Reply, """{"text": 5}""", 400, "text" },
        { Reply, """{"text": "hi", "max_length": "10"}""", 400, "max_length" },
        { Reply, """{"text": "hi", "max_length": 0}""", 400, "max_length" },
        { Reply, """{"text": "hi", "max_length": 101}""", 400, "max_length" },
        { Reply, """{"text": "hi", "max_length": 1.5}""", 400, "max_length" },
        { Reply, $$"""{"text": "{{new string('가', 1001)}}"}""", 413, "text" },
        { Chat, "{\"messages\": [", 400, null },
        { Chat, "{}", 400, "messages" },
        { Chat, """{"messages": []}""", 400, "messages" },
        { Chat, """{"messages": "hi"}""", 400, "messages" },
        { Chat, """{"messages": [42]}""", 400, "messages[0]" },
        { Chat, """{"messages": [{"content": "hi"}]}""", 400, "messages[0].role" },
        { Chat, """{"messages": [{"role": "user", "content": 7}]}""", 400, "messages[0].content" },
        { Chat, """{"messages": [{"role": "system", "content": "only a system prompt"}]}""", 400, "messages" },
        { Chat, """{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}""", 400, "messages[0].content[0].type" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}""", 400, "stream" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}""", 400, "max_tokens" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}""", 400, "max_tokens" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "n": 0}""", 400, "n" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "seed": "x"}""", 400, "seed" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}""", 400, "temperature" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "temperature": 2.5}""", 400, "temperature" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "top_p": 0}""", 400, "top_p" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "temperature": 1, "top_k": -1}""", 400, "top_k" },
        { Reply, """{"text": "hi", "beam_size": 0}""", 400, "beam_size" },
        { Reply, """{"text": "hi", "beam_size": 17}""", 400, "beam_size" },
        { Reply, """{"text": "hi", "beam_size": 2, "nbest": 3}""", 400, "nbest" },
        { Reply, """{"text": "hi", "beam_size": 2, "temperature": 1}""", 400, "beam_size" },
        { Reply, """{"text": "hi", "temperature": -1}""", 400, "temperature" },
        { Reply, """{"text": "hi", "temperature": 1, "top_p": 1.5}""", 400, "top_p" },
        { Reply, """{"text": "hi", "length_penalty": "long"}""", 400, "length_penalty" },
        { Reply, """{"text": "hi", "repetition_penalty": 0}""", 400, "repetition_penalty" },
        { Reply, """{"text": "hi", "min_length": 50, "max_length": 10}""", 400, "min_length" },
        { Reply, """{"text": "hi", "no_repeat_ngram_size": -1}""", 400, "no_repeat_ngram_size" },
        { Reply, """{"text": "hi", "allow_unk": 1}""", 400, "allow_unk" },
        { Reply, """{"text": "hi", "seed": 1.5}""", 400, "seed" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "stream_options": true}""", 400, "stream_options" },
        { Chat, $$"""{"messages": [{"role": "user", "content": "{{new string('a', 1001)}}"}]}""", 413, "messages" },
        // Found by RequestFuzzTests: valid JSON that System.Text.Json cannot turn into text was a 500.
        { Reply, """{"text": "hi\ud800"}""", 400, "text" },
        { Chat, """{"messages": [{"role": "user", "content": "a\udfff"}]}""", 400, "messages[0].content" },
        { Chat, """{"messages": [{"role": "user", "content": [{"type": "text", "text": "\ud83d"}]}]}""", 400, "messages[0].content[0].text" },
        { Chat, """{"messages": [{"role": "\ud800", "content": "hi"}]}""", 400, "messages[0].role" },
        // Numbers beyond a double read as ±infinity, which the range checks refuse.
        { Reply, """{"text": "hi", "temperature": 1e309}""", 400, "temperature" },
        { Reply, """{"text": "hi", "length_penalty": -1e400}""", 400, "length_penalty" },
        { Chat, """{"messages": [{"role": "user", "content": "hi"}], "top_p": 1E999}""", 400, "top_p" },
        { Reply, """{"text": "hi", "x\udfff": 1}""", 400, null },
        { Chat, """{"messages": [{"role": "user", "content": "hi", "\ud800": 2}]}""", 400, null },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadRequest_GetsA4xxJsonError_AndTheServerKeepsServing(string route, string body, int status, string? param)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await fixture.Server.Http.PostAsync(route, content);
        var error = await AssertErrorAsync(response, status);
        if (param is not null) Assert.Equal(param, error.GetProperty("param").GetString());

        Assert.Equal(fixture.Model.Reply(fixture.Questions[1]), await fixture.Server.ReplyAsync(fixture.Questions[1]));
    }

    [Fact]
    public async Task BodyLargerThanTheLimit_Gets413()
    {
        string huge = new('a', ServerOptions.DefaultMaxRequestBytes + 10);
        // Expect: 100-continue lets the server refuse from the headers before the client writes the body; without it
        // the server's early 413 and connection close can race the client's write (a broken pipe instead of the answer).
        using var request = new HttpRequestMessage(HttpMethod.Post, Reply)
        {
            Content = new StringContent($$"""{"text": "{{huge}}"}""", Encoding.UTF8, "application/json"),
        };
        request.Headers.ExpectContinue = true;
        using var response = await fixture.Server.Http.SendAsync(request);
        await AssertErrorAsync(response, 413);
        Assert.Equal(fixture.Model.Reply(fixture.Questions[2]), await fixture.Server.ReplyAsync(fixture.Questions[2]));
    }

    /// <summary>Found by RequestFuzzTests: System.Text.Json reads bytes that are not UTF-8 inside a string without
    /// complaint and throws only when the string is read, which was a 500.</summary>
    [Theory]
    [InlineData(new byte[] { 0xFF }, false)]
    [InlineData(new byte[] { 0xC3 }, false)]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, false)]
    [InlineData(new byte[] { 0xFF }, true)]
    public async Task BytesThatAreNotUtf8_InAStringOrAName_Get400(byte[] bad, bool inName)
    {
        byte[] body = inName
            ? [.. "{\"text\": \"hi\", \"a"u8, .. bad, .. "\": 1}"u8]
            : [.. "{\"text\": \"a"u8, .. bad, .. "b\"}"u8];
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await fixture.Server.Http.PostAsync(Reply, content);
        var error = await AssertErrorAsync(response, 400);
        Assert.Equal(inName ? "invalid_json" : "invalid_value", error.GetProperty("code").GetString());
        Assert.Equal(inName ? null : "text", error.GetProperty("param").GetString());
        Assert.Contains("not UTF-8", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownFields_AreTolerated()
    {
        string question = fixture.Questions[3];
        string body = JsonSerializer.Serialize(new
        {
            model = "some-other-model",
            messages = new object[] { new { role = "user", content = question, name = "kim", extra = new[] { 1 } } },
            temperature = 0,
            seed = 7,
            user = "u1",
            frequency_penalty = 0,
            whatever = new { nested = true },
        });
        using var response = await fixture.Server.Http.PostAsync(Chat, new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(fixture.Model.Reply(question), json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        using var reply = await fixture.Server.Http.PostAsync(Reply, new StringContent(JsonSerializer.Serialize(new { text = question, options = new { beam = 3 } }), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
    }

    [Theory]
    [InlineData("GET", "/v1/nothing-here", 404)]
    [InlineData("POST", "/nothing-here", 404)]
    [InlineData("GET", "/v1/models/not-this-one", 404)]
    [InlineData("DELETE", "/healthz", 405)]
    public async Task UnknownRoutes_GetJsonErrors(string method, string path, int status)
    {
        using var response = await fixture.Server.Http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        await AssertErrorAsync(response, status);
    }

    [Fact]
    public async Task ApiKey_IsRequiredOnV1_WhenSet()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { ApiKey = "k-123" });
        string body = """{"text": "hi"}""";

        using (var missing = await server.Http.PostAsync(Reply, new StringContent(body, Encoding.UTF8, "application/json")))
        {
            await AssertErrorAsync(missing, 401);
            Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);
        }
        foreach (string header in new[] { "Bearer k-1234", "Basic k-123", "Bearer " })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, Reply) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("Authorization", header);
            using var wrong = await server.Http.SendAsync(request);
            await AssertErrorAsync(wrong, 401);
        }
        using (var models = await server.Http.GetAsync("/v1/models")) await AssertErrorAsync(models, 401);

        using (var request = new HttpRequestMessage(HttpMethod.Post, Reply) { Content = new StringContent(body, Encoding.UTF8, "application/json") })
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "k-123");
            using var right = await server.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        }
        // Health, readiness, metrics and the page stay open for probes and people.
        foreach (string open in new[] { "/healthz", "/readyz", "/metrics", "/" })
        {
            using var response = await server.Http.GetAsync(open);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    internal static async Task<JsonElement> AssertErrorAsync(HttpResponseMessage response, int status)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var json = JsonDocument.Parse(text);
        var error = json.RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _));
        Assert.True(error.TryGetProperty("code", out _));
        return error.Clone();
    }
}
