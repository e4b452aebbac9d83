using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CsCheck;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Seqtalk.Decoding;
using Seqtalk.Server;
using Seqtalk.Tests.Fuzz;
using Xunit.Abstractions;

namespace Seqtalk.Server.Tests;

/// <summary>
/// The JSON binding of <c>POST /v1/reply</c> and <c>POST /v1/chat/completions</c> on generated bodies: random bytes,
/// random JSON values, deep nesting, and valid requests with fields set to wrong types, awkward numbers, nulls,
/// lone-surrogate escapes, empty and oversize strings, unknown fields, removed fields, and byte edits (invalid
/// UTF-8 included). Every body either binds to options the model replies with, or is refused with a documented
/// 4xx (docs/server.md, Errors); nothing else escapes. The binding runs in-process (10,000 bodies per endpoint,
/// the same calls the endpoint makes, in the same order); a smaller sample goes through the real server, which
/// must answer each body as the in-process binding predicts and keep serving. See docs/testing.md.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class RequestFuzzTests(ServerFixture fixture, ITestOutputHelper output)
{
    private const int BindingInputs = 10_000;
    private const int HttpInputs = 1_000;

    /// <summary>The error codes docs/server.md lists for a refused body (400 and 413).</summary>
    private static readonly HashSet<string> DocumentedCodes =
        ["invalid_json", "invalid_type", "invalid_value", "missing_required_parameter", "unsupported_value", "input_too_long", "request_too_large"];

    public enum Endpoint { Reply, Chat }

    /// <summary>What the endpoint makes of a body: options to reply with, or a refusal.</summary>
    private sealed record Outcome(string? Question, DecodeOptions? Decode, int Choices, bool Stream, ApiException? Refusal);

    [Theory]
    [InlineData(Endpoint.Reply)]
    [InlineData(Endpoint.Chat)]
    public void GeneratedBodies_BindOrGetADocumented4xx(Endpoint endpoint)
    {
        var replies = fixture.Server.App.Services.GetRequiredService<ReplyService>();
        var options = fixture.Server.App.Services.GetRequiredService<ServerOptions>();
        int bound = 0;
        var codes = new Dictionary<string, int>();
        FuzzRunner.Run(output, $"server-{Name(endpoint)}-binding", Bodies(endpoint), body =>
        {
            var outcome = Bind(endpoint, body, replies, options);
            if (outcome.Refusal is { } refusal)
            {
                CheckRefusal(refusal.Status, refusal.Code, refusal.Message);
                codes[refusal.Code!] = codes.GetValueOrDefault(refusal.Code!) + 1;
                return;
            }
            bound++;
            outcome.Decode!.Validate();
            var reply = fixture.Model.ReplyDetailed(outcome.Question!, outcome.Decode);
            Assert.InRange(reply.Tokens.Count, 0, outcome.Decode.MaxLength!.Value);
        }, BindingInputs, FuzzRunner.ShowBytes);
        output.WriteLine($"{bound} bodies bound and were replied to; refused: {string.Join(", ", codes.OrderBy(c => c.Key).Select(c => $"{c.Key} {c.Value}"))}");
        // The generator must reach past the refusals, or the property says little about the replies, and reach every kind of refusal.
        Assert.InRange(bound, BindingInputs / 20, BindingInputs);
        string[] expected = endpoint == Endpoint.Reply
            ? ["invalid_json", "invalid_type", "invalid_value", "missing_required_parameter", "input_too_long"]
            : ["invalid_json", "invalid_type", "invalid_value", "missing_required_parameter", "unsupported_value", "input_too_long"];
        foreach (string code in expected) Assert.True(codes.ContainsKey(code), $"no body was refused with '{code}'");
    }

    [Theory]
    [InlineData(Endpoint.Reply)]
    [InlineData(Endpoint.Chat)]
    public async Task GeneratedBodies_OverHttp_AreAnsweredAsTheBindingSays(Endpoint endpoint)
    {
        var replies = fixture.Server.App.Services.GetRequiredService<ReplyService>();
        var options = fixture.Server.App.Services.GetRequiredService<ServerOptions>();
        var http = fixture.Server.Http;
        string path = endpoint == Endpoint.Reply ? "/v1/reply" : "/v1/chat/completions";
        FuzzRunner.Run(output, $"server-{Name(endpoint)}-http", Bodies(endpoint), body =>
        {
            var expected = Bind(endpoint, body, replies, options);
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = http.PostAsync(path, content).GetAwaiter().GetResult();
            string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            int status = (int)response.StatusCode;
            if (expected.Refusal is { } refusal)
            {
                using var error = JsonDocument.Parse(text);
                var e = error.RootElement.GetProperty("error");
                Assert.True(status == refusal.Status, $"status {status}, expected {refusal.Status} ({refusal.Message}): {text}");
                Assert.Equal(refusal.Code, e.GetProperty("code").GetString());
                Assert.Equal(refusal.Param, e.GetProperty("param").GetString());
                CheckRefusal(status, e.GetProperty("code").GetString(), e.GetProperty("message").GetString());
                return;
            }
            Assert.True(status == 200, $"status {status}, expected 200: {text}");
            if (endpoint == Endpoint.Reply)
            {
                using var answer = JsonDocument.Parse(text);
                Assert.Equal(JsonValueKind.String, answer.RootElement.GetProperty("reply").ValueKind);
                Assert.InRange(answer.RootElement.GetProperty("tokens").GetInt32(), 0, expected.Decode!.MaxLength!.Value);
            }
            else if (expected.Stream)
            {
                Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
                Assert.EndsWith("data: [DONE]\n\n", text, StringComparison.Ordinal);
            }
            else
            {
                using var answer = JsonDocument.Parse(text);
                Assert.Equal(expected.Choices, answer.RootElement.GetProperty("choices").GetArrayLength());
            }
        }, HttpInputs, FuzzRunner.ShowBytes);

        // Still serving, and still the model's reply.
        using var health = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        string question = fixture.Questions[0];
        Assert.Equal(fixture.Model.Reply(question), await fixture.Server.ReplyAsync(question));
    }

    private static string Name(Endpoint endpoint) => endpoint == Endpoint.Reply ? "reply" : "chat";

    private static void CheckRefusal(int status, string? code, string? message)
    {
        Assert.True(status is 400 or 413, $"status {status} ({code}: {message})");
        Assert.True(code is not null && DocumentedCodes.Contains(code), $"undocumented code '{code}' ({message})");
        Assert.False(string.IsNullOrWhiteSpace(message));
    }

    /// <summary>What the endpoint does with a body before it queues the question: <c>SeqtalkServer.ParseReply</c>, and for
    /// chat the same calls in the same order as <c>ChatCompletions.HandleAsync</c>. Any exception but <see cref="ApiException"/>
    /// escapes (and fails the fuzz target).</summary>
    private static Outcome Bind(Endpoint endpoint, byte[] body, ReplyService replies, ServerOptions options)
    {
        var context = new DefaultHttpContext();
        context.Request.Body = new MemoryStream(body);
        context.Request.ContentLength = body.Length;
        try
        {
            var json = RequestReader.ReadObjectAsync(context.Request, options.MaxRequestBytes).GetAwaiter().GetResult();
            if (endpoint == Endpoint.Reply)
            {
                var (text, decode) = SeqtalkServer.ParseReply(json, replies, options);
                return new Outcome(text, decode, 1, false, null);
            }
            var request = ChatCompletions.Parse(json, options);
            replies.CheckQuestion(request.Question, "messages");
            int length = replies.ResolveMaxLength(request.MaxTokens);
            return new Outcome(request.Question, request.Decode with { MaxLength = length }, request.N, request.Stream, null);
        }
        catch (ApiException e)
        {
            return new Outcome(null, null, 0, false, e);
        }
    }

    // ---- generators --------------------------------------------------------------------------------

    private static readonly string[] AwkwardNumbers =
    [
        "0", "-0", "1", "-1", "2", "3", "15", "16", "17", "32", "64", "99", "100", "101", "1000", "1001", "2147483647", "2147483648",
        "-2147483648", "-2147483649", "4294967296", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "18446744073709551616", "123456789012345678901234567890", "1e309", "-1e309", "1E400", "1e-400", "5e-324", "1.7976931348623157e308",
        "0.0", "-0.0", "0.5", "1.5", "2.0", "2.5", "1e2", "1E+2", "0.1", "0.9999999999999999", "1.0000000000000002", "3.4028235e38", "3.5e38",
    ];

    private static readonly Gen<string> Number = Gen.Frequency(
        (4, Gen.OneOf(AwkwardNumbers)),
        (1, Gen.Int.Select(i => i.ToString(CultureInfo.InvariantCulture))),
        (1, Gen.Long.Select(i => i.ToString(CultureInfo.InvariantCulture))),
        (1, Gen.Double[-1e3, 1e3].Select(d => d.ToString("R", CultureInfo.InvariantCulture))));

    /// <summary>Pieces of a JSON string literal, already escaped: text, escapes, lone surrogates, specials.</summary>
    private static readonly string[] StringPieces =
    [
        "가", "민수", "는 ", "오늘 ", "행복해", " ", "a", "hello", "\\n", "\\t", "\\r", "\\\"", "\\\\", "\\/", "\\u0000", "\\u001f", "\\u0085",
        "\\ud800", "\\udfff", "\\ud83d\\ude0a", "\\ude0a\\ud83d", "😊", "<s>", "</s>", "<unk>", "<pad>", "\\u2028", "\\uFEFF", "\\uFFFE",
        "e\\u0301", "\u1112\u1161", "\u2581", "user", "text", "{", "[", ",", ":",
    ];

    private static readonly Gen<string> StringLiteral = Gen.Frequency(
        (8, Gen.OneOf(StringPieces).Array[0, 12].Select(p => "\"" + string.Concat(p) + "\"")),
        (2, Gen.OneOf("\"user\"", "\"assistant\"", "\"system\"", "\"developer\"", "\"text\"", "\"image_url\"", "\"tiny\"", "\"\"")),
        (1, Gen.Select(Gen.OneOf(StringPieces), Gen.Int[400, 2_500], (p, n) => "\"" + string.Concat(Enumerable.Repeat(p, n)) + "\"")));

    private static readonly string[] Fields =
    [
        "text", "max_length", "min_length", "beam_size", "length_penalty", "nbest", "temperature", "top_k", "top_p", "seed",
        "no_repeat_ngram_size", "repetition_penalty", "allow_unk", "messages", "model", "max_tokens", "max_completion_tokens", "n",
        "stream", "stream_options", "include_usage", "role", "content", "type",
    ];

    private static readonly Gen<string> Key = Gen.Frequency(
        (4, Gen.OneOf(Fields).Select(f => "\"" + f + "\"")),
        (1, StringLiteral));

    private static readonly Gen<string> Leaf = Gen.Frequency(
        (2, Gen.OneOf("null", "true", "false")), (4, Number), (4, StringLiteral), (1, Gen.OneOf("[]", "{}")));

    /// <summary>Any JSON value, up to 3 levels of arrays and objects.</summary>
    private static readonly Gen<string> Value = Compose(Compose(Compose(Leaf)));

    private static Gen<string> Compose(Gen<string> inner) => Gen.Frequency(
        (5, Leaf),
        (1, inner.Array[0, 4].Select(a => "[" + string.Join(",", a) + "]")),
        (1, Gen.Select(Key, inner).Array[0, 4].Select(kv => "{" + string.Join(",", kv.Select(p => p.Item1 + ":" + p.Item2)) + "}")));

    /// <summary>Arrays or objects nested 1–200 deep (the reader allows 32), alone or in an unknown field of a valid body.</summary>
    private static readonly Gen<string> Deep = Gen.Select(Gen.Int[1, 200], Gen.Int[0, 2], (depth, kind) => kind switch
    {
        0 => new string('[', depth) + "1" + new string(']', depth),
        1 => string.Concat(Enumerable.Repeat("{\"text\":", depth)) + "\"hi\"" + new string('}', depth),
        _ => "{\"text\":\"hi\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"x\":" + new string('[', depth) + new string(']', depth) + "}",
    });

    private sealed record Field(string Key, string Value);

    private enum EditKind { Set, Remove, Add, Duplicate }

    /// <summary>A field-level edit: set a field to any value or to an awkward number, remove it, add a field (known or
    /// not), or repeat a field.</summary>
    private static readonly Gen<(EditKind Kind, int At, string Key, string Value)> Edit = Gen.Frequency(
        (5, Gen.Select(Gen.Int[0, 1000], Value, (at, value) => (EditKind.Set, at, "", value))),
        (3, Gen.Select(Gen.Int[0, 1000], Number, (at, value) => (EditKind.Set, at, "", value))),
        (2, Gen.Int[0, 1000].Select(at => (EditKind.Remove, at, "", ""))),
        (2, Gen.Select(Gen.Int[0, 1000], Key, Value, (at, key, value) => (EditKind.Add, at, key, value))),
        (2, Gen.Select(Gen.Int[0, 1000], Gen.OneOf(Fields), Number, (at, key, value) => (EditKind.Add, at, "\"" + key + "\"", value))),
        (1, Gen.Select(Gen.Int[0, 1000], Value, (at, value) => (EditKind.Duplicate, at, "", value))));

    private static string Serialize(IEnumerable<Field> fields) => "{" + string.Join(",", fields.Select(f => f.Key + ":" + f.Value)) + "}";

    private static string Apply(List<Field> fields, (EditKind Kind, int At, string Key, string Value)[] edits)
    {
        var result = new List<Field>(fields);
        foreach (var (kind, at, key, value) in edits)
        {
            int i = result.Count == 0 ? 0 : at % result.Count;
            switch (kind)
            {
                case EditKind.Set when result.Count > 0: result[i] = result[i] with { Value = value }; break;
                case EditKind.Remove when result.Count > 0: result.RemoveAt(i); break;
                case EditKind.Duplicate when result.Count > 0: result.Add(result[i] with { Value = value }); break;
                default: result.Insert(Math.Min(i, result.Count), new Field(key, value)); break;
            }
        }
        return Serialize(result);
    }

    /// <summary>A question: one the model was trained on, or generated text (sometimes over the 1,000-character limit).</summary>
    private static readonly Gen<string> Question = Gen.Frequency(
        (2, Gen.OneOf(ServerFixture.Pairs().Select(p => JsonSerializer.Serialize(p.Question)).ToArray())),
        (1, StringLiteral));

    /// <summary>A field with a value in its range, or near its edge.</summary>
    private static Gen<Field> Optional(string name, Gen<string> value) => value.Select(v => new Field("\"" + name + "\"", v));

    private static Gen<string> IntIn(int min, int max) => Gen.Int[min, max].Select(i => i.ToString(CultureInfo.InvariantCulture));

    private static Gen<string> DoubleIn(double min, double max) => Gen.Double[min, max].Select(d => d.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Each of <paramref name="optional"/> present or not, in order.</summary>
    private static Gen<List<Field>> SomeOf(params Gen<Field>[] optional) =>
        optional.Aggregate(Gen.Const(new List<Field>()), (list, field) => Gen.Select(list, Gen.Bool, field, (l, keep, f) => keep ? [.. l, f] : l));

    private static readonly Gen<List<Field>> ValidReply = Gen.Select(Question, Gen.Frequency(
        (2, Gen.Const(new List<Field>())),
        (3, SomeOf(
            Optional("max_length", IntIn(1, 100)), Optional("beam_size", IntIn(1, 16)), Optional("nbest", IntIn(1, 4)),
            Optional("length_penalty", DoubleIn(0, 2)), Optional("temperature", DoubleIn(0, 2)), Optional("top_k", IntIn(0, 50)),
            Optional("top_p", DoubleIn(0.01, 1)), Optional("seed", IntIn(int.MinValue, int.MaxValue)), Optional("min_length", IntIn(0, 5)),
            Optional("no_repeat_ngram_size", IntIn(0, 4)), Optional("repetition_penalty", DoubleIn(1, 2)),
            Optional("allow_unk", Gen.OneOf("true", "false"))))),
        (text, rest) => rest.Prepend(new Field("\"text\"", text)).ToList());

    private static readonly Gen<string> Part = Gen.Frequency(
        (4, Question.Select(q => "{\"type\":\"text\",\"text\":" + q + "}")),
        (1, Gen.Const("{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x\"}}")));

    private static readonly Gen<string> Message = Gen.Select(
        Gen.OneOf("\"user\"", "\"user\"", "\"system\"", "\"assistant\"", "\"developer\""),
        Gen.Frequency((6, Question), (2, Part.Array[0, 3].Select(p => "[" + string.Join(",", p) + "]")), (1, Gen.Const("null"))),
        (role, content) => "{\"role\":" + role + ",\"content\":" + content + "}");

    private static readonly Gen<List<Field>> ValidChat = Gen.Select(
        Gen.Select(Message.Array[0, 3], Question, (before, last) => "[" + string.Join(",", before.Append("{\"role\":\"user\",\"content\":" + last + "}")) + "]"),
        Gen.Frequency(
            (2, Gen.Const(new List<Field>())),
            (3, SomeOf(
                Optional("model", Gen.OneOf("\"tiny\"", "\"gpt-4o\"")), Optional("max_tokens", IntIn(1, 100)), Optional("max_completion_tokens", IntIn(1, 100)),
                Optional("n", IntIn(1, 4)), Optional("stream", Gen.OneOf("true", "false")),
                Optional("stream_options", Gen.OneOf("{\"include_usage\":true}", "{\"include_usage\":false}", "{}")),
                Optional("temperature", DoubleIn(0, 2)), Optional("top_p", DoubleIn(0.01, 1)), Optional("top_k", IntIn(0, 50)),
                Optional("seed", Gen.Long.Select(l => l.ToString(CultureInfo.InvariantCulture))),
                Optional("user", Gen.Const("\"someone\"")), Optional("frequency_penalty", Gen.Const("0")), Optional("logprobs", Gen.Const("false"))))),
        (messages, rest) => rest.Prepend(new Field("\"messages\"", messages)).ToList());

    /// <summary>Every kind of body for <paramref name="endpoint"/>, as bytes.</summary>
    private static Gen<byte[]> Bodies(Endpoint endpoint)
    {
        var valid = endpoint == Endpoint.Reply ? ValidReply : ValidChat;
        var edited = Gen.Select(valid, Edit.Array[1, 3], Apply);
        static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
        return Gen.Frequency(
            (2, valid.Select(f => Utf8(Serialize(f)))),
            (5, edited.Select(Utf8)),
            (2, Mutations.Of(Gen.Frequency((1, valid.Select(Serialize)), (1, edited)).Select(Utf8))),
            (1, Value.Select(Utf8)),
            (1, Deep.Select(Utf8)),
            (1, Mutations.RandomBytes));
    }
}
