using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace Seqtalk.Cli.Tests;

/// <summary><c>seqtalk serve</c> run as a user runs it, on loopback only.</summary>
public sealed class ServeCommandTests(TinyModel tiny) : IClassFixture<TinyModel>, IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Serve_RepliesAsTheReplyCommandDoes_AndStopsCleanlyOnSigterm()
    {
        const string question = "민수는 오늘 행복해";
        var expected = CliRunner.Run(_dir.Path, "reply", "--model", tiny.ModelDirectory, question);
        Assert.True(expected.ExitCode == 0, expected.ToString());

        int port = FreePort();
        string? served = null;
        Exception? clientError = null;
        var r = CliRunner.Run(_dir.Path, ["serve", "--model", tiny.ModelDirectory, "--urls", $"http://127.0.0.1:{port}"],
            timeout: TimeSpan.FromMinutes(1),
            onStdoutLine: (process, line) =>
            {
                if (!line.StartsWith("serving ", StringComparison.Ordinal)) return;
                int pid = process.Id;
                _ = Task.Run(async () =>
                {
                    try
                    {
                        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
                        for (int i = 0; i < 100; i++)
                        {
                            try
                            {
                                if ((await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK) break;
                            }
                            catch (HttpRequestException) { }
                            await Task.Delay(100);
                        }
                        var response = await http.PostAsJsonAsync("/v1/reply", new { text = question });
                        response.EnsureSuccessStatusCode();
                        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                        served = json.RootElement.GetProperty("reply").GetString();
                    }
                    catch (Exception e)
                    {
                        clientError = e;
                    }
                    finally
                    {
                        Signal(pid, "TERM");
                    }
                });
            });
        Assert.Null(clientError);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(expected.StdoutLines[0], served);
    }

    [Fact]
    public void Serve_OnAPortInUse_FailsWithOneLine()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var r = CliRunner.Run(_dir.Path, ["serve", "--model", tiny.ModelDirectory, "--urls", $"http://127.0.0.1:{port}"], timeout: TimeSpan.FromMinutes(1));
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Single(r.StderrLines);
        Assert.StartsWith("error: cannot listen on", r.StderrLines[0]);
        Assert.DoesNotContain("   at ", r.Stdout + r.Stderr);
    }

    [Theory]
    [InlineData("--max-batch-size", "0")]
    [InlineData("--queue-capacity", "-1")]
    public void Serve_BadOptionValue_IsAUsageError(string option, string value)
    {
        var r = CliRunner.Run(_dir.Path, "serve", "--model", tiny.ModelDirectory, option, value);
        Assert.True(r.ExitCode == 2, r.ToString());
        Assert.Single(r.StderrLines);
        Assert.Contains(option, r.StderrLines[0]);
    }

    [Fact]
    public void Serve_MissingModel_IsOneLineFailure()
    {
        var r = CliRunner.Run(_dir.Path, "serve", "--model", "no-such-model");
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Single(r.StderrLines);
        Assert.Contains("no-such-model", r.StderrLines[0]);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{signal} {pid}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }
}
