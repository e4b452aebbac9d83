using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Seqtalk.Decoding;
using Seqtalk.Server;

namespace Seqtalk.Server.Tests;

/// <summary>The decoding options over HTTP: /v1/reply's fields and n-best answer, sampling in chat completions, and
/// micro-batches that mix options without one reply depending on another.</summary>
[Collection(ServerCollection.Name)]
public sealed class DecodingEndpointTests(ServerFixture fixture)
{
    private static async Task<JsonElement> PostAsync(HttpClient http, string route, object body)
    {
        using var response = await http.PostAsJsonAsync(route, body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        return json.RootElement.Clone();
    }

    [Fact]
    public async Task Reply_BeamWithNBest_ReturnsTheLibrarysCandidatesAndScores()
    {
        string question = fixture.Questions[2];
        var root = await PostAsync(fixture.Server.Http, "/v1/reply", new { text = question, beam_size = 3, nbest = 3, length_penalty = 0.5, allow_unk = true });
        var expected = fixture.Model.ReplyDetailed(question, new DecodeOptions
        {
            BeamSize = 3,
            NBest = 3,
            LengthPenalty = 0.5,
            AllowUnknown = true,
            MaxLength = fixture.Model.DefaultMaxReplyLength,
        });
        Assert.Equal(expected.Text, root.GetProperty("reply").GetString());
        Assert.Equal(expected.Tokens.Count, root.GetProperty("tokens").GetInt32());
        Assert.Equal(expected.NBest.Select(c => c.Text), root.GetProperty("nbest").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(expected.NBest.Select(c => Math.Round(c.Score, 6)), root.GetProperty("scores").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(expected.NBest.Select(c => Math.Round(c.LogProbability, 6)), root.GetProperty("log_probs").EnumerateArray().Select(e => e.GetDouble()));
        Assert.Equal(Math.Round(expected.Score, 6), root.GetProperty("score").GetDouble());
    }

    [Fact]
    public async Task Reply_SamplingWithASeed_IsReproducibleAndTheLibrarys()
    {
        string question = fixture.Questions[5];
        var body = new { text = question, temperature = 1.5, top_k = 4, seed = 42, nbest = 4 };
        var a = await PostAsync(fixture.Server.Http, "/v1/reply", body);
        var b = await PostAsync(fixture.Server.Http, "/v1/reply", body);
        var expected = fixture.Model.ReplyDetailed(question, new DecodeOptions
        {
            Temperature = 1.5,
            TopK = 4,
            Seed = 42,
            NBest = 4,
            MaxLength = fixture.Model.DefaultMaxReplyLength,
        });
        Assert.Equal(expected.NBest.Select(c => c.Text), a.GetProperty("nbest").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(a.GetProperty("nbest").ToString(), b.GetProperty("nbest").ToString());
    }

    [Fact]
    public async Task ChatCompletion_PositiveTemperature_GivesNSampledChoices_WithModelTokenUsage()
    {
        string question = fixture.Questions[7];
        var body = new { messages = new[] { new { role = "user", content = question } }, temperature = 1.8, top_p = 0.9, seed = 9, n = 3, max_tokens = 12 };
        var root = await PostAsync(fixture.Server.Http, "/v1/chat/completions", body);
        var expected = fixture.Model.ReplyDetailed(question, new DecodeOptions { Temperature = 1.8, TopP = 0.9, Seed = 9, NBest = 3, MaxLength = 12 });
        var choices = root.GetProperty("choices");
        Assert.Equal(3, choices.GetArrayLength());
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(expected.NBest[i].Text, choices[i].GetProperty("message").GetProperty("content").GetString());
            Assert.Equal(expected.NBest[i].Tokens.Count >= 12 ? "length" : "stop", choices[i].GetProperty("finish_reason").GetString());
        }
        var usage = root.GetProperty("usage");
        Assert.Equal(fixture.Model.CountQuestionTokens(question), usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(expected.NBest.Sum(c => c.Tokens.Count), usage.GetProperty("completion_tokens").GetInt32());

        // Without a temperature the seed and top_p change nothing: the reply of `seqtalk reply`.
        var greedy = await PostAsync(fixture.Server.Http, "/v1/chat/completions", body with { temperature = 0.0 });
        Assert.Equal(fixture.Model.Reply(question, new DecodeOptions { MaxLength = 12 }), greedy.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task OneMicroBatchWithMixedOptions_GivesEveryRequestTheReplyItGetsAlone()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { MaxBatchSize = 64 });
        int max = fixture.Model.DefaultMaxReplyLength;
        var requests = new List<(string Question, object Body, DecodeOptions Options)>();
        for (int i = 0; i < 12; i++)
        {
            string q = fixture.Questions[i % fixture.Questions.Count];
            requests.Add((q, new { text = q }, new DecodeOptions { MaxLength = max }));
            requests.Add((q, new { text = q, beam_size = 2 + i % 3 }, new DecodeOptions { MaxLength = max, BeamSize = 2 + i % 3 }));
            requests.Add((q, new { text = q, temperature = 1.3, seed = 100 + i % 2 }, new DecodeOptions { MaxLength = max, Temperature = 1.3, Seed = 100 + i % 2 }));
            requests.Add((q, new { text = q, temperature = 1.3, seed = 7, nbest = 2, no_repeat_ngram_size = 1 },
                new DecodeOptions { MaxLength = max, Temperature = 1.3, Seed = 7, NBest = 2, NoRepeatNgramSize = 1 }));
        }

        var before = await server.MetricsAsync();
        server.Batcher.CloseGate();
        var pending = requests.Select(r => PostAsync(server.Http, "/v1/reply", r.Body)).ToList();
        await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == requests.Count, "all requests are queued");
        server.Batcher.OpenGate();
        var answers = await Task.WhenAll(pending);

        for (int i = 0; i < requests.Count; i++)
        {
            var alone = fixture.Model.ReplyDetailed(requests[i].Question, requests[i].Options);
            Assert.Equal(alone.Text, answers[i].GetProperty("reply").GetString());
            if (answers[i].TryGetProperty("nbest", out var nbest)) Assert.Equal(alone.NBest.Select(c => c.Text), nbest.EnumerateArray().Select(e => e.GetString()));
        }
        var after = await server.MetricsAsync();
        Assert.Equal(requests.Count, after["seqtalk_batch_size_sum"] - before["seqtalk_batch_size_sum"]);
    }
}
