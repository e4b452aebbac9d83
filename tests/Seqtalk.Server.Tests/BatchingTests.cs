using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Seqtalk.Server;
using Xunit.Abstractions;

namespace Seqtalk.Server.Tests;

/// <summary>
/// Dynamic batching, the queue limit, the timeout and clients that go away. The batcher has a test gate: while it
/// is closed the loop takes nothing, so a test can fill the queue or form a batch of a known size without timing.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class BatchingTests(ServerFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void ReplyBatch_GivesEachQuestionTheReplyItGetsAlone()
    {
        var questions = fixture.Questions;
        var together = fixture.Model.ReplyBatch(questions);
        var reversed = fixture.Model.ReplyBatch(questions.Reverse().ToList());
        for (int i = 0; i < questions.Count; i++)
        {
            string alone = fixture.Model.Reply(questions[i]);
            Assert.Equal(alone, together[i]);
            Assert.Equal(alone, reversed[questions.Count - 1 - i]);
        }
    }

    /// <summary>The quality preset's kind of model, small: BPE pieces and general attention, each row attending over its
    /// own encoder outputs. A reply must not depend on its batch-mates there either, in the library and through the batcher.</summary>
    [Fact]
    public async Task AttentionAndBpeModel_GivesEachQuestionItsReplyAlone_InLibraryBatchesAndServerBatches()
    {
        var pairs = ServerFixture.Pairs();
        var model = ChatModel.Train(pairs, new Seqtalk.Training.TrainingOptions
        {
            Epochs = 60,
            BatchSize = 5,
            EmbeddingDim = 16,
            HiddenDim = 24,
            Attention = Seqtalk.Nn.AttentionKind.General,
            Tokenizer = Seqtalk.Text.TokenizerKind.Bpe,
            BpeVocabularySize = 300,
            Optimizer = Seqtalk.Training.OptimizerKind.Adam,
            LearningRate = 0.02f,
            ValidationSize = 0,
            Seed = 5,
            Threads = 1,
        });
        // Questions of many lengths (so rows leave the encoder and the decoder at different steps), unseen ones too.
        List<string> questions = [.. pairs.Select(p => p.Question), "처음 보는 질문이에요", "hello there", "", "민수는 오늘 행복해 정말 정말로 정말로", "배고파"];
        var alone = questions.Select(q => model.Reply(q)).ToList();
        Assert.True(alone.Distinct().Count() > 3, "the replies should differ from question to question: " + string.Join(" | ", alone));
        Assert.Equal(alone, model.ReplyBatch(questions));
        Assert.Equal(Enumerable.Reverse(alone), model.ReplyBatch([.. Enumerable.Reverse(questions)]));
        foreach (int size in new[] { 2, 3, 4, 7, 17 })
            Assert.Equal(alone, questions.Chunk(size).SelectMany(chunk => model.ReplyBatch(chunk)));

        await using var server = await ServerHost.StartAsync(model, new ServerOptions { MaxBatchSize = 64 });
        var before = await server.MetricsAsync();
        server.Batcher.CloseGate();
        var pending = questions.Select(q => server.ReplyAsync(q)).ToList();
        await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == questions.Count, "all questions are queued");
        server.Batcher.OpenGate();
        Assert.Equal(alone, await Task.WhenAll(pending));
        var after = await server.MetricsAsync();
        Assert.Equal(1, after["seqtalk_batch_size_count"] - before["seqtalk_batch_size_count"]);   // decoded as one batch
    }

    [Fact]
    public async Task ConcurrentRequests_AreDecodedInOneBatch_AndEachGetsItsOwnReply()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { MaxBatchSize = 32 });
        var before = await server.MetricsAsync();
        var questions = fixture.Questions.Take(12).ToList();

        server.Batcher.CloseGate();
        var pending = questions.Select(q => server.ReplyAsync(q)).ToList();
        await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == questions.Count, "all questions are queued");
        server.Batcher.OpenGate();
        var replies = await Task.WhenAll(pending);

        for (int i = 0; i < questions.Count; i++) Assert.Equal(fixture.Model.Reply(questions[i]), replies[i]);
        var after = await server.MetricsAsync();
        Assert.Equal(1, after["seqtalk_batch_size_count"] - before["seqtalk_batch_size_count"]);
        Assert.Equal(questions.Count, after["seqtalk_batch_size_sum"] - before["seqtalk_batch_size_sum"]);
    }

    [Fact]
    public async Task ABatch_IsCutIntoOneSharePerFreeThread()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { MaxBatchSize = 64, DecodeThreads = 2 });
        var questions = fixture.Questions.Take(6).ToList();
        var before = await server.MetricsAsync();
        await WithSharesHeldAsync(server, async () =>
        {
            server.Batcher.CloseGate();
            var pending = questions.Select(q => server.ReplyAsync(q)).ToList();
            await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == questions.Count, "all questions are queued");
            server.Batcher.OpenGate();
            await ServerHost.WaitUntilAsync(() => server.Batcher.SharesDecoding == 2, "the batch of six is cut in two shares");
            server.Batcher.ReleaseShares();
            var replies = await Task.WhenAll(pending);
            for (int i = 0; i < questions.Count; i++) Assert.Equal(fixture.Model.Reply(questions[i]), replies[i]);
            var after = await server.MetricsAsync();
            Assert.Equal(1, after["seqtalk_batch_size_count"] - before["seqtalk_batch_size_count"]);   // one batch, two shares
            await ServerHost.WaitUntilAsync(() => server.Batcher.SharesDecoding == 0, "both shares end");
        });
    }

    /// <summary>A free thread takes the next question while another share still decodes (no batch waits for another to
    /// end), and a third waits: for a thread (two threads, both busy) or for room (MaxBatchSize 2 with four threads).</summary>
    [Theory]
    [InlineData(8, 2)]
    [InlineData(2, 4)]
    public async Task ASecondQuestionStartsBesideTheFirst_AThirdWaitsForAThreadOrForRoom(int maxBatchSize, int threads)
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { MaxBatchSize = maxBatchSize, DecodeThreads = threads });
        var questions = fixture.Questions.Take(3).ToList();
        var before = await server.MetricsAsync();
        await WithSharesHeldAsync(server, async () =>
        {
            var first = server.ReplyAsync(questions[0]);
            await ServerHost.WaitUntilAsync(() => server.Batcher.SharesDecoding == 1, "the first question decodes");
            var second = server.ReplyAsync(questions[1]);
            await ServerHost.WaitUntilAsync(() => server.Batcher.SharesDecoding == 2, "the second question decodes beside the first");
            var third = server.ReplyAsync(questions[2]);
            await ServerHost.WaitUntilAsync(() => server.Batcher.WaitingForRoom && server.Batcher.QueueLength == 1, "the third question waits");
            Assert.Equal(2, server.Batcher.SharesDecoding);
            Assert.False(first.IsCompleted || second.IsCompleted || third.IsCompleted);
            server.Batcher.ReleaseShares();
            Assert.Equal(questions.Select(q => fixture.Model.Reply(q)), await Task.WhenAll(first, second, third));
            var after = await server.MetricsAsync();
            Assert.Equal(3, after["seqtalk_batch_size_count"] - before["seqtalk_batch_size_count"]);
        });
    }

    [Fact]
    public async Task MaxBatchSizeOne_DecodesOneQuestionAtATime()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { MaxBatchSize = 1, DecodeThreads = 2 });
        var questions = fixture.Questions.Take(2).ToList();
        await WithSharesHeldAsync(server, async () =>
        {
            var first = server.ReplyAsync(questions[0]);
            await ServerHost.WaitUntilAsync(() => server.Batcher.SharesDecoding == 1, "the first question decodes");
            var second = server.ReplyAsync(questions[1]);
            await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == 1, "the second question is queued");
            // The lone share decodes on the loop's own thread (nothing could start beside it), so the loop takes nothing more
            // until it ends; give a wrong batcher time to start the second anyway.
            await Task.Delay(200);
            Assert.Equal(1, server.Batcher.SharesDecoding);
            Assert.Equal(1, server.Batcher.QueueLength);
            server.Batcher.ReleaseShares();
            Assert.Equal(questions.Select(q => fixture.Model.Reply(q)), await Task.WhenAll(first, second));
        });
    }

    /// <summary>Runs <paramref name="body"/> with the batcher's shares held (<see cref="ReplyBatcher.HoldShares"/>); releases
    /// them even when a check fails, since a held share would keep the server from stopping.</summary>
    private static async Task WithSharesHeldAsync(ServerHost server, Func<Task> body)
    {
        server.Batcher.HoldShares();
        try
        {
            await body();
        }
        finally
        {
            server.Batcher.ReleaseShares();
        }
    }

    [Fact]
    public async Task QuestionsThatQueuedWhileTheLoopWasBusy_StartAtOnce_ALoneQuestionWaitsForCompany()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { MaxBatchSize = 32, MaxBatchWaitMs = 20 });
        var questions = fixture.Questions.Take(6).ToList();
        await ServerHost.WaitUntilAsync(() => server.Batcher.Idle, "the loop waits for work");
        long waits = server.Batcher.TimedWaits;
        var before = await server.MetricsAsync();

        server.Batcher.CloseGate();   // the loop is busy: questions pile up
        var pending = questions.Select(q => server.ReplyAsync(q)).ToList();
        await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == questions.Count, "all questions are queued");
        server.Batcher.OpenGate();
        var replies = await Task.WhenAll(pending);
        for (int i = 0; i < questions.Count; i++) Assert.Equal(fixture.Model.Reply(questions[i]), replies[i]);
        Assert.Equal(waits, server.Batcher.TimedWaits);   // the backlog was decoded without waiting for more
        var after = await server.MetricsAsync();
        Assert.Equal(1, after["seqtalk_batch_size_count"] - before["seqtalk_batch_size_count"]);
        Assert.Equal(questions.Count, after["seqtalk_batch_size_sum"] - before["seqtalk_batch_size_sum"]);

        // A question that finds the loop idle waits up to MaxBatchWaitMs for others, then gets its own reply.
        await ServerHost.WaitUntilAsync(() => server.Batcher.Idle, "the loop waits for work");
        Assert.Equal(fixture.Model.Reply(questions[0]), await server.ReplyAsync(questions[0]));
        Assert.Equal(waits + 1, server.Batcher.TimedWaits);
    }

    [Fact]
    public async Task FullQueue_Gets429WithRetryAfter_AndQueuedRequestsStillGetReplies()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { QueueCapacity = 2 });
        server.Batcher.CloseGate();
        var first = server.ReplyAsync(fixture.Questions[0]);
        var second = server.ReplyAsync(fixture.Questions[1]);
        await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == 2, "two questions are queued");

        using (var refused = await server.Http.PostAsJsonAsync("/v1/reply", new { text = fixture.Questions[2] }))
        {
            var error = await RefusalTests.AssertErrorAsync(refused, 429);
            Assert.Equal("queue_full", error.GetProperty("code").GetString());
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        }

        server.Batcher.OpenGate();
        Assert.Equal(fixture.Model.Reply(fixture.Questions[0]), await first);
        Assert.Equal(fixture.Model.Reply(fixture.Questions[1]), await second);
        Assert.Equal(fixture.Model.Reply(fixture.Questions[2]), await server.ReplyAsync(fixture.Questions[2]));
    }

    [Fact]
    public async Task RequestThatWaitsTooLong_Gets504_AndIsNotDecoded()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model, new ServerOptions { RequestTimeoutSeconds = 1 });
        server.Batcher.CloseGate();
        using (var late = await server.Http.PostAsJsonAsync("/v1/reply", new { text = fixture.Questions[0] }))
        {
            var error = await RefusalTests.AssertErrorAsync(late, 504);
            Assert.Equal("request_timeout", error.GetProperty("code").GetString());
        }
        var before = await server.MetricsAsync();
        server.Batcher.OpenGate();
        Assert.Equal(fixture.Model.Reply(fixture.Questions[1]), await server.ReplyAsync(fixture.Questions[1]));
        var after = await server.MetricsAsync();
        Assert.Equal(1, after["seqtalk_batch_size_sum"] - before["seqtalk_batch_size_sum"]); // only the live question was decoded
    }

    [Fact]
    public async Task ClientThatGoesAway_IsDroppedBeforeDecoding_AndCountedAs499()
    {
        await using var server = await ServerHost.StartAsync(fixture.Model);
        server.Batcher.CloseGate();
        using var cancel = new CancellationTokenSource();
        var abandoned = server.Http.PostAsJsonAsync("/v1/reply", new { text = fixture.Questions[0] }, cancel.Token);
        await ServerHost.WaitUntilAsync(() => server.Batcher.QueueLength == 1, "the question is queued");
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);

        await ServerHost.WaitUntilAsync(async () => (await server.MetricsAsync()).GetValueOrDefault("seqtalk_http_requests_total{route=\"/v1/reply\",status=\"499\"}") == 1,
            "the server counts the request as abandoned");
        var before = await server.MetricsAsync();
        server.Batcher.OpenGate();
        Assert.Equal(fixture.Model.Reply(fixture.Questions[1]), await server.ReplyAsync(fixture.Questions[1]));
        var after = await server.MetricsAsync();
        Assert.Equal(1, after["seqtalk_batch_size_sum"] - before["seqtalk_batch_size_sum"]);
    }

    [Fact]
    public async Task LoadOf64ClientsTimes20Requests_LosesNothing_AndEveryReplyIsTheLibrarys()
    {
        const int clients = 64, perClient = 20;
        var questions = fixture.Questions;
        var expected = questions.ToDictionary(q => q, q => fixture.Model.Reply(q));
        var server = fixture.Server;
        var before = await server.MetricsAsync();
        using var bound = new CancellationTokenSource(TimeSpan.FromMinutes(5)); // a bound on the run, not an assertion on speed
        long start = Stopwatch.GetTimestamp();

        var workers = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            int ok = 0;
            for (int r = 0; r < perClient; r++)
            {
                string question = questions[(c * perClient + r) % questions.Count];
                using var response = await server.Http.PostAsJsonAsync("/v1/reply", new { text = question }, bound.Token);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(bound.Token));
                Assert.Equal(expected[question], body.RootElement.GetProperty("reply").GetString());
                ok++;
            }
            return ok;
        })).ToList();
        int total = (await Task.WhenAll(workers)).Sum();
        var elapsed = Stopwatch.GetElapsedTime(start);

        Assert.Equal(clients * perClient, total);
        var after = await server.MetricsAsync();
        Assert.Equal(clients * perClient, after["seqtalk_batch_size_sum"] - before["seqtalk_batch_size_sum"]);
        Assert.Equal(clients * perClient, after["seqtalk_http_requests_total{route=\"/v1/reply\",status=\"200\"}"]
            - before.GetValueOrDefault("seqtalk_http_requests_total{route=\"/v1/reply\",status=\"200\"}"));
        double batches = after["seqtalk_batch_size_count"] - before["seqtalk_batch_size_count"];
        output.WriteLine($"{total} requests from {clients} clients in {elapsed.TotalSeconds:F2} s: {total / elapsed.TotalSeconds:F0} requests/s, "
            + $"{batches} batches, mean batch size {total / batches:F1}");
    }
}
