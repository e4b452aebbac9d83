using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Seqtalk.Cli.Commands;

/// <summary><c>seqtalk eval --model DIR --data F [--json] [--examples FILE] [--validation-only] [decoding options]</c>: the
/// likelihood of the answers (loss, perplexity, bits per character with and without the spelling of <c>&lt;unk&gt;</c> words, token accuracy), the <c>&lt;unk&gt;</c> share of the
/// questions, and the quality of the replies decoded with the options of <c>reply</c> (BLEU, chrF, token F1, distinct-n,
/// lengths, repetition, replies containing <c>&lt;unk&gt;</c>) (<see cref="ChatModel.Evaluate"/>).</summary>
internal static class EvalCommand
{
    private static readonly JsonSerializerOptions s_compact = new()
    {
        WriteIndented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,   // Korean stays readable in the files
    };

    public static Command Create()
    {
        var model = SharedOptions.Model();
        var data = new DataOptions();
        var decodeFlags = new DecodeFlags();
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var examples = new Option<string?>("--examples")
        {
            Description = "Also write one JSON line per pair (question, reference, reply, bits, bits per character, <unk> spelling bits, chrF) to FILE.",
            HelpName = "FILE",
        };
        var validationOnly = new Option<bool>("--validation-only")
        {
            Description = "Evaluate only the rows the model held out for validation (--data must be its training file).",
        };

        var command = new Command("eval", "Evaluate a model on question/answer pairs.") { model };
        data.AddTo(command);
        decodeFlags.AddTo(command, nbest: false);
        command.Options.Add(json);
        command.Options.Add(examples);
        command.Options.Add(validationOnly);
        command.SetAction(parse => CommandRunner.Run(parse, () =>
        {
            var decode = decodeFlags.Read(parse);
            var chat = ChatModel.Load(parse.GetValue(model)!);
            IReadOnlyList<Data.QaPair> pairs = data.ReadPairs(parse, out _);
            if (parse.GetValue(validationOnly)) pairs = chat.ValidationPairs(pairs);
            var r = chat.Evaluate(pairs, decode);
            if (parse.GetValue(examples) is { } examplesPath) WriteExamples(examplesPath, r);
            if (parse.GetValue(json))
            {
                Console.WriteLine(ToJson(r).ToJsonString(s_compact));
            }
            else
            {
                var inv = CultureInfo.InvariantCulture;
                Console.WriteLine(string.Create(inv, $"pairs            {r.Pairs:N0}"));
                Console.WriteLine(string.Create(inv, $"answer tokens    {r.Tokens:N0} (with </s>; {r.UnknownShare * 100:F1}% <unk>, {r.TruncatedReferences:N0} answers cut)"));
                Console.WriteLine(string.Create(inv, $"question tokens  {r.QuestionTokens:N0} ({r.QuestionUnknownShare * 100:F2}% <unk>)"));
                Console.WriteLine(string.Create(inv, $"loss             {r.Loss:F4}"));
                Console.WriteLine(string.Create(inv, $"perplexity       {r.Perplexity:F2}"));
                Console.WriteLine(string.Create(inv, $"bits/char        {r.BitsPerCharacter:F4} (over {r.ReferenceCharacters:N0} answer characters, <unk> words spelled out)"));
                Console.WriteLine(string.Create(inv, $"model bits/char  {r.ModelBitsPerCharacter:F4} (+ {r.UnknownSpellingBits:N0} bits to spell {r.UnknownTokens:N0} <unk>{PerUnknown(r)})"));
                Console.WriteLine(string.Create(inv, $"token accuracy   {r.TokenAccuracy * 100:F1}%"));
                Console.WriteLine(string.Create(inv, $"BLEU             {r.Bleu:F2} (sacreBLEU 13a)"));
                Console.WriteLine(string.Create(inv, $"char BLEU        {r.CharacterBleu:F2}"));
                Console.WriteLine(string.Create(inv, $"chrF             {r.Chrf:F2}"));
                Console.WriteLine(string.Create(inv, $"token F1         {r.TokenF1:F4}"));
                Console.WriteLine(string.Create(inv, $"exact match      {r.ExactMatch * 100:F1}%"));
                Console.WriteLine(string.Create(inv, $"distinct-1/2     {r.Distinct1:F4} / {r.Distinct2:F4}"));
                Console.WriteLine(string.Create(inv, $"reply length     {r.MeanReplyLength:F2} tokens, {r.MeanReplyCharacters:F1} chars (answers {r.MeanReferenceLength:F2} tokens)"));
                Console.WriteLine(string.Create(inv, $"top-10 replies   {r.TopRepliesShare * 100:F1}% of replies"));
                Console.WriteLine(string.Create(inv, $"<unk> replies    {r.RepliesWithUnknown:N0}"));
                Console.WriteLine($"decoding         {DecodeFlags.Describe(decode)}");
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    internal static JsonObject ToJson(EvaluationResult r) => new()
    {
        ["pairs"] = r.Pairs,
        ["tokens"] = r.Tokens,
        ["loss"] = Number(r.Loss),
        ["perplexity"] = Number(r.Perplexity),
        ["bitsPerCharacter"] = Number(r.BitsPerCharacter),
        ["modelBitsPerCharacter"] = Number(r.ModelBitsPerCharacter),
        ["unknownSpellingBits"] = Number(r.UnknownSpellingBits),
        ["unknownTokens"] = r.UnknownTokens,
        ["referenceCharacters"] = r.ReferenceCharacters,
        ["unknownShare"] = Number(r.UnknownShare),
        ["truncatedReferences"] = r.TruncatedReferences,
        ["questionTokens"] = r.QuestionTokens,
        ["questionUnknownShare"] = Number(r.QuestionUnknownShare),
        ["repliesWithUnknown"] = r.RepliesWithUnknown,
        ["tokenAccuracy"] = Number(r.TokenAccuracy),
        ["bleu"] = Number(r.Bleu),
        ["charBleu"] = Number(r.CharacterBleu),
        ["chrf"] = Number(r.Chrf),
        ["tokenF1"] = Number(r.TokenF1),
        ["exactMatch"] = Number(r.ExactMatch),
        ["distinct1"] = Number(r.Distinct1),
        ["distinct2"] = Number(r.Distinct2),
        ["meanReplyLength"] = Number(r.MeanReplyLength),
        ["meanReplyCharacters"] = Number(r.MeanReplyCharacters),
        ["meanReferenceLength"] = Number(r.MeanReferenceLength),
        ["top10ReplyShare"] = Number(r.TopRepliesShare),
    };

    /// <summary>One JSON object per line, in the order of the pairs; written to a temporary file and renamed.</summary>
    private static void WriteExamples(string path, EvaluationResult r)
    {
        string temp = path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        try
        {
            using (var writer = new StreamWriter(temp, append: false, new UTF8Encoding(false)) { NewLine = "\n" })
            {
                foreach (var e in r.Examples)
                {
                    var line = new JsonObject
                    {
                        ["question"] = e.Question,
                        ["reference"] = e.Reference,
                        ["reply"] = e.Reply,
                        ["tokens"] = e.Tokens,
                        ["bits"] = Number(e.Bits),
                        ["bitsPerCharacter"] = Number(e.BitsPerCharacter),
                        ["unknownSpellingBits"] = Number(e.UnknownSpellingBits),
                        ["chrf"] = Number(e.Chrf),
                    };
                    writer.WriteLine(line.ToJsonString(s_compact));
                }
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw new SeqtalkException($"Cannot write --examples file '{path}': {e.Message}", e);
        }
    }

    /// <summary>", 34.1 bits each" when there are unknown tokens, else nothing.</summary>
    private static string PerUnknown(EvaluationResult r) =>
        r.UnknownTokens == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $", {r.UnknownSpellingBits / r.UnknownTokens:F1} bits each");

    /// <summary>JSON has no NaN or infinity: those become null.</summary>
    private static JsonValue? Number(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;
}
