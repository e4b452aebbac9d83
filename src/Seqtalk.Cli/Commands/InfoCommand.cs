using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk info --model DIR</c>: architecture, vocabulary sizes, parameter count, and how the
/// model was trained when the directory records it.</summary>
internal static class InfoCommand
{
    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var model = SharedOptions.Model();
        var command = new Command("info", "Show a model's architecture, vocabulary sizes, parameter count and training summary.") { model };
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            string directory = parse.GetValue(model)!;
            var chat = ChatModel.Load(directory);   // checks every file first
            var c = chat.Config;
            var config = ReadConfig(directory);
            Row("model", directory);
            Row("architecture", string.Create(s_inv, $"LSTM encoder-decoder, embedding {c.EmbeddingDim}, hidden {c.HiddenDim}, {c.Layers} layer(s)")
                + TrainCommand.ArchitectureSuffix(c.Attention, c.InputFeeding, c.BidirectionalEncoder, c.Bridge)
                + (c.TiedEmbeddings ? ", tied embeddings" : ""));
            Row("vocabulary", string.Create(s_inv, $"{c.SourceVocabSize:N0} question tokens, {c.TargetVocabSize:N0} answer tokens"));
            Row("parameters", chat.ParameterCount.ToString("N0", s_inv));
            Row("max reply", string.Create(s_inv, $"{chat.DefaultMaxReplyLength} tokens"));
            if (config?["tokenizer"] is JsonObject tokenizer)
                Row("tokenizer", $"{Text(tokenizer["kind"])}, normalization {Text(tokenizer["normalization"])}, lowercase questions {Text(tokenizer["lowercase"])}");
            if (config?["seqtalkVersion"] is { } version) Row("written by", "seqtalk " + Text(version));
            PrintTraining(chat, config?["training"] as JsonObject);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The training summary: from the model when the library keeps it, else from config.json
    /// (ChatModel.Load does not restore <see cref="ChatModel.Training"/>).</summary>
    private static void PrintTraining(ChatModel chat, JsonObject? training)
    {
        if (chat.Training is { } summary)
        {
            var best = summary.Epochs.FirstOrDefault(e => e.Epoch == summary.BestEpoch);
            Row("training", string.Create(s_inv,
                $"{summary.Epochs.Count} epoch(s), best epoch {summary.BestEpoch}{(best?.ValidationLoss is { } l ? string.Create(s_inv, $" (val loss {l:F4})") : "")}, " +
                $"{summary.TrainingPairs:N0} training / {summary.ValidationPairs:N0} validation pairs{(summary.StoppedEarly ? ", stopped early" : "")}{(summary.Cancelled ? ", interrupted" : "")}"));
            return;
        }
        if (training is null || training["epochs"] is not JsonArray epochs)
        {
            Row("training", "not recorded");
            return;
        }
        int bestEpoch = Int(training["bestEpoch"]);
        var bestNode = epochs.OfType<JsonObject>().FirstOrDefault(e => Int(e["epoch"]) == bestEpoch);
        string loss = bestNode?["validationLoss"] is JsonValue v && v.TryGetValue<double>(out double vl) ? string.Create(s_inv, $" (val loss {vl:F4})") : "";
        Row("training", string.Create(s_inv,
            $"{epochs.Count} epoch(s), best epoch {bestEpoch}{loss}, {Int(training["trainingPairs"]):N0} training / {Int(training["validationPairs"]):N0} validation pairs" +
            $"{(Bool(training["stoppedEarly"]) ? ", stopped early" : "")}{(Bool(training["cancelled"]) ? ", interrupted" : "")}"));
        if (training["options"] is JsonObject o)
        {
            Row("options", $"optimizer {Text(o["Optimizer"])}, learning rate {Text(o["LearningRate"])}, batch {Text(o["BatchSize"])}, seed {Text(o["Seed"])}, " +
                $"validation {Text(o["ValidationSize"])} ({Text(o["Split"])})");
        }
    }

    private static JsonObject? ReadConfig(string directory)
    {
        try { return JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "config.json"))) as JsonObject; }
        catch (Exception e) when (e is JsonException or IOException) { return null; }
    }

    private static void Row(string name, string value) => Console.WriteLine($"{name,-14}{value}");

    private static string Text(JsonNode? node) => node switch
    {
        null => "?",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };

    private static int Int(JsonNode? node) => node is JsonValue v && v.TryGetValue<int>(out int i) ? i : 0;

    private static bool Bool(JsonNode? node) => node is JsonValue v && v.TryGetValue<bool>(out bool b) && b;
}
