using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Seqtalk.Data;
using Seqtalk.Server;
using Seqtalk.Training;

namespace Seqtalk.Server.Tests;

/// <summary>
/// One tiny model for the whole test run: trained on 20 generated pairs, saved to a temp directory and loaded
/// back (the path <c>seqtalk serve</c> takes), plus one server with default options on 127.0.0.1.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ModelName = "tiny";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "seqtalk-server-test-" + Guid.NewGuid().ToString("N"));

    public ChatModel Model { get; private set; } = null!;
    public ServerHost Server { get; private set; } = null!;

    /// <summary>The training questions and a few the model never saw.</summary>
    public IReadOnlyList<string> Questions { get; private set; } = [];

    public static List<QaPair> Pairs()
    {
        string[] names = ["민수", "지영", "tom", "anna", "철수"];
        string[] moods = ["행복해", "피곤해", "배고파", "심심해"];
        string[] replies = ["좋은 일이 있었나 봐요!", "푹 쉬세요.", "맛있는 거 드세요.", "같이 놀아요!"];
        var pairs = new List<QaPair>();
        for (int i = 0; i < 20; i++)
        {
            int n = i % names.Length, m = i / names.Length % moods.Length;
            pairs.Add(new QaPair($"{names[n]}는 오늘 {moods[m]}", $"{names[n]}님, {replies[m]}", i + 2));
        }
        return pairs;
    }

    public async Task InitializeAsync()
    {
        var pairs = Pairs();
        var trained = ChatModel.Train(pairs, new TrainingOptions
        {
            Epochs = 40,
            BatchSize = 10,
            EmbeddingDim = 16,
            HiddenDim = 24,
            Optimizer = OptimizerKind.Adam,
            LearningRate = 0.02f,
            ValidationSize = 0,
            Seed = 11,
            Threads = 1,
        });
        trained.Save(_directory);
        Model = ChatModel.Load(_directory);
        Questions = [.. pairs.Select(p => p.Question), "처음 보는 질문이에요", "hello there", "", "민수는 오늘 행복해 정말 정말로"];
        Server = await ServerHost.StartAsync(Model);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}

/// <summary>A real server on 127.0.0.1 with a free port, and an HttpClient pointed at it.</summary>
public sealed class ServerHost : IAsyncDisposable
{
    private ServerHost(WebApplication app, Uri baseAddress)
    {
        App = app;
        BaseAddress = baseAddress;
        Http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = baseAddress };
    }

    public WebApplication App { get; }
    public Uri BaseAddress { get; }
    public HttpClient Http { get; }
    internal ReplyBatcher Batcher => App.Services.GetRequiredService<ReplyBatcher>();

    /// <summary>Starts a server with <paramref name="options"/> (port 0, no API key unless one is given) and waits until /readyz says ready.</summary>
    public static async Task<ServerHost> StartAsync(ChatModel model, ServerOptions? options = null)
    {
        options = (options ?? new ServerOptions()) with { Urls = "http://127.0.0.1:0" };
        if (options.ApiKey is null) options = options with { ApiKey = "" }; // not the environment's key
        var app = SeqtalkServer.Build(model, options, ServerFixture.ModelName);
        await app.StartAsync();
        var host = new ServerHost(app, new Uri(app.Urls.Single()));
        Assert.Equal("127.0.0.1", host.BaseAddress.Host);
        for (int i = 0; i < 600; i++)
        {
            using var ready = await host.Http.GetAsync("/readyz");
            if (ready.IsSuccessStatusCode) return host;
            await Task.Delay(50);
        }
        throw new InvalidOperationException("The server did not become ready.");
    }

    public async Task<string> ReplyAsync(string text)
    {
        using var response = await Http.PostAsJsonAsync("/v1/reply", new { text });
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("reply").GetString()!;
    }

    /// <summary>The /metrics samples, keyed by the sample line without its value.</summary>
    public async Task<Dictionary<string, double>> MetricsAsync()
    {
        string text = await Http.GetStringAsync("/metrics");
        var samples = new Dictionary<string, double>();
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            int space = line.LastIndexOf(' ');
            samples[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
        return samples;
    }

    /// <summary>Polls until <paramref name="condition"/> holds; a bound on the wait, not a timing assertion.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        for (int i = 0; i < 1000; i++)
        {
            if (await condition()) return;
            await Task.Delay(10);
        }
        Assert.Fail($"Gave up waiting until {what}.");
    }

    public static Task WaitUntilAsync(Func<bool> condition, string what) => WaitUntilAsync(() => Task.FromResult(condition()), what);

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
