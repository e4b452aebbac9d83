using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk eval --model DIR --data F [--json]</c>: loss, perplexity, token accuracy, BLEU and
/// token F1 of greedy replies (<see cref="ChatModel.Evaluate"/>).</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = SharedOptions.Model();
        var data = new DataOptions();
        var maxLength = SharedOptions.MaxLength();
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };

        var command = new Command("eval", "Evaluate a model on question/answer pairs.") { model };
        data.AddTo(command);
        command.Options.Add(maxLength);
        command.Options.Add(json);
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var decode = SharedOptions.ToDecodeOptions(parse.GetValue(maxLength));
            var chat = ChatModel.Load(parse.GetValue(model)!);
            var pairs = data.ReadPairs(parse, out _);
            var r = chat.Evaluate(pairs, decode);
            if (parse.GetValue(json))
            {
                var obj = new JsonObject
                {
                    ["pairs"] = r.Pairs,
                    ["tokens"] = r.Tokens,
                    ["loss"] = Number(r.Loss),
                    ["perplexity"] = Number(r.Perplexity),
                    ["tokenAccuracy"] = Number(r.TokenAccuracy),
                    ["bleu"] = Number(r.Bleu),
                    ["tokenF1"] = Number(r.TokenF1),
                    ["exactMatch"] = Number(r.ExactMatch),
                };
                Console.WriteLine(obj.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
            }
            else
            {
                var inv = CultureInfo.InvariantCulture;
                Console.WriteLine(string.Create(inv, $"pairs           {r.Pairs:N0}"));
                Console.WriteLine(string.Create(inv, $"answer tokens   {r.Tokens:N0}"));
                Console.WriteLine(string.Create(inv, $"loss            {r.Loss:F4}"));
                Console.WriteLine(string.Create(inv, $"perplexity      {r.Perplexity:F2}"));
                Console.WriteLine(string.Create(inv, $"token accuracy  {r.TokenAccuracy * 100:F1}%"));
                Console.WriteLine(string.Create(inv, $"BLEU            {r.Bleu:F2}"));
                Console.WriteLine(string.Create(inv, $"token F1        {r.TokenF1:F4}"));
                Console.WriteLine(string.Create(inv, $"exact match     {r.ExactMatch * 100:F1}%"));
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>JSON has no NaN or infinity: those become null.</summary>
    private static JsonValue? Number(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;
}
