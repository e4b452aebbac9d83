using System.Text.Json;
using Seqtalk.Decoding;

namespace Seqtalk.Server;

/// <summary>
/// The decoding fields of <c>POST /v1/reply</c> (snake_case, all optional), mapped onto <see cref="DecodeOptions"/>:
/// <c>beam_size</c>, <c>length_penalty</c>, <c>nbest</c>, <c>temperature</c>, <c>top_k</c>, <c>top_p</c>, <c>seed</c>,
/// <c>min_length</c>, <c>no_repeat_ngram_size</c>, <c>repetition_penalty</c>, <c>allow_unk</c>. A bad value is a 400
/// that names the field.
/// </summary>
internal static class DecodeFields
{
    /// <summary>Largest beam and n-best a request may ask for (each costs a decoder row).</summary>
    public const int MaxBeam = 16;

    private static readonly Dictionary<string, string> s_fieldNames = new()
    {
        [nameof(DecodeOptions.MaxLength)] = "max_length",
        [nameof(DecodeOptions.MinLength)] = "min_length",
        [nameof(DecodeOptions.BeamSize)] = "beam_size",
        [nameof(DecodeOptions.LengthPenalty)] = "length_penalty",
        [nameof(DecodeOptions.NBest)] = "nbest",
        [nameof(DecodeOptions.Temperature)] = "temperature",
        [nameof(DecodeOptions.TopK)] = "top_k",
        [nameof(DecodeOptions.TopP)] = "top_p",
        [nameof(DecodeOptions.Seed)] = "seed",
        [nameof(DecodeOptions.NoRepeatNgramSize)] = "no_repeat_ngram_size",
        [nameof(DecodeOptions.RepetitionPenalty)] = "repetition_penalty",
        [nameof(DecodeOptions.AllowUnknown)] = "allow_unk",
    };

    public static DecodeOptions Read(JsonElement body, int maxLength)
    {
        var defaults = new DecodeOptions();
        var options = new DecodeOptions
        {
            MaxLength = maxLength,
            MinLength = RequestReader.OptionalInt(body, "min_length", 0, maxLength) ?? defaults.MinLength,
            BeamSize = RequestReader.OptionalInt(body, "beam_size", 1, MaxBeam) ?? defaults.BeamSize,
            LengthPenalty = RequestReader.OptionalNumber(body, "length_penalty") ?? defaults.LengthPenalty,
            NBest = RequestReader.OptionalInt(body, "nbest", 1, MaxBeam) ?? defaults.NBest,
            Temperature = RequestReader.OptionalNumber(body, "temperature") ?? defaults.Temperature,
            TopK = RequestReader.OptionalInt(body, "top_k", 0, int.MaxValue) ?? defaults.TopK,
            TopP = RequestReader.OptionalNumber(body, "top_p") ?? defaults.TopP,
            Seed = RequestReader.OptionalInt(body, "seed", int.MinValue, int.MaxValue),
            NoRepeatNgramSize = RequestReader.OptionalInt(body, "no_repeat_ngram_size", 0, 100) ?? defaults.NoRepeatNgramSize,
            RepetitionPenalty = RequestReader.OptionalNumber(body, "repetition_penalty") ?? defaults.RepetitionPenalty,
            AllowUnknown = RequestReader.OptionalBool(body, "allow_unk") ?? defaults.AllowUnknown,
        };
        Validate(options);
        return options;
    }

    /// <summary>Validates the options and turns a failure into a 400 naming the request field.</summary>
    public static void Validate(DecodeOptions options)
    {
        try
        {
            options.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            string field = e.ParamName is { } p && s_fieldNames.TryGetValue(p, out var name) ? name : e.ParamName ?? "options";
            string reason = e.Message;
            int cut = reason.IndexOf(" (Parameter", StringComparison.Ordinal);
            if (cut >= 0) reason = reason[..cut];
            reason = string.Join(' ', reason.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            foreach (var (property, json) in s_fieldNames) reason = reason.Replace(property, json, StringComparison.Ordinal);
            throw ApiException.BadRequest($"'{field}' is {Format(e.ActualValue)}: {reason}", field);
        }
    }

    private static string Format(object? value) => value switch
    {
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        null => "null",
        _ => value.ToString() ?? "",
    };
}
