using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Seqtalk.Extensions.AI;

/// <summary>Registers a Seqtalk model for dependency injection.</summary>
public static class SeqtalkServiceCollectionExtensions
{
    /// <summary>Registers <paramref name="model"/> as the <see cref="ChatModel"/> singleton and a
    /// <see cref="SeqtalkChatClient"/> over it as the <see cref="IChatClient"/> singleton.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="model">The model; shared by every caller.</param>
    /// <param name="modelId">The id the client reports.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="model"/> is null.</exception>
    public static IServiceCollection AddSeqtalkChatClient(this IServiceCollection services, ChatModel model, string modelId = SeqtalkChatClient.DefaultModelId)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(model);
        var client = new SeqtalkChatClient(model, modelId);
        services.AddSingleton(model);
        services.AddSingleton(client);
        services.AddSingleton<IChatClient>(client);
        return services;
    }
}
