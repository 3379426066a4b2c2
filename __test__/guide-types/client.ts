// `./client` of the guide's Inngest sample (49): the app's Inngest client.
import { Inngest } from 'inngest'

export const inngest = new Inngest({ id: 'smartapi-forge' })
